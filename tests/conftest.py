"""Fixtures for the real services the integration tests use (RabbitMQ, PostgreSQL) and per-test isolation.

Which ones: `CERTMON_TEST_AMQP_URL` / `CERTMON_TEST_DATABASE_URL`, else the servers on 127.0.0.1's default ports,
else containers started once per session with testcontainers where a Docker engine runs, else the tests that
need them are skipped with the reason (tests/support/services_under_test.py).
"""

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from shared.db import create_pool
from tests.support.services_under_test import (
    POSTGRES,
    RABBITMQ,
    Dependency,
    container,
    decide,
    docker_problem,
    port_open,
)


def _service_url(dependency: Dependency) -> Iterator[str]:
    decision = decide(
        dependency,
        env_url=os.environ.get(dependency.variable),
        port_open=port_open(dependency.port),
        docker_problem=docker_problem,
    )
    if decision.how == "skip":
        pytest.skip(decision.reason)
    if decision.how == "local":
        assert decision.url is not None
        yield decision.url
        return
    with container(dependency) as url:
        yield url


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """The RabbitMQ of the session (see the module's docstring for which)."""
    yield from _service_url(RABBITMQ)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The PostgreSQL of the session: a database on it that tests create theirs beside."""
    yield from _service_url(POSTGRES)


@pytest.fixture
def amqp_url(rabbitmq_url: str) -> str:
    """The RabbitMQ under test."""
    return rabbitmq_url


@pytest.fixture
async def database_url(postgres_url: str) -> AsyncIterator[str]:
    """A fresh, empty database on the PostgreSQL under test, dropped afterwards."""
    name = f"certmon_t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = postgres_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(postgres_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def pg_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """An asyncpg pool on a fresh database."""
    pool = await create_pool(database_url, max_size=5)
    try:
        yield pool
    finally:
        await pool.close()
