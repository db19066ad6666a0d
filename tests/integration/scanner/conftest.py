"""Fixtures shared by the scanner's integration tests."""

import asyncpg
import pytest


@pytest.fixture(params=["memory", "postgres"])
def store_pool(request: pytest.FixtureRequest) -> asyncpg.Pool | None:
    """Runs a store contract test once per adapter: None for the in-memory twin, a pool on a fresh database
    for PostgreSQL (only then is a database created)."""
    pool: asyncpg.Pool | None = request.getfixturevalue("pg_pool") if request.param == "postgres" else None
    return pool
