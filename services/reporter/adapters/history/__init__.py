"""The reporter's history: one port (`HistoryStore`), two adapters (PostgreSQL in `postgres`, and its in-memory
twin) that pass the same contract tests."""

from services.reporter.adapters.history.memory import InMemoryHistory
from services.reporter.adapters.history.store import CertificateFilter, HistoryStore

__all__ = ["CertificateFilter", "HistoryStore", "InMemoryHistory"]
