"""The reporter's app on an in-memory history: a module that needs other alarms or evaluations overrides
`history`, and `client` serves whatever `history` holds."""

from collections.abc import AsyncIterator

import httpx
import pytest

from services.reporter.adapters.memory import InMemoryHistory
from tests.unit.reporter.reporter_app import client_on, store_alarms


@pytest.fixture
async def history() -> InMemoryHistory:
    """A history holding an open, an acknowledged and a resolved alarm."""
    history = InMemoryHistory()
    await store_alarms(history)
    return history


@pytest.fixture
async def client(history: InMemoryHistory) -> AsyncIterator[httpx.AsyncClient]:
    """A client on `history` with one read and one write token configured (action links work without one)."""
    async with client_on(history) as client:
        yield client
