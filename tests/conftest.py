"""Fixtures for the real services this machine runs (RabbitMQ, PostgreSQL) and per-test isolation."""

import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from shared.db import create_pool

AMQP_URL = os.environ.get("CERTMON_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
DATABASE_URL = os.environ.get("CERTMON_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def amqp_url() -> str:
    """The RabbitMQ under test."""
    return AMQP_URL


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    """A fresh, empty database on the PostgreSQL under test, dropped afterwards."""
    name = f"certmon_t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(DATABASE_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = DATABASE_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(DATABASE_URL)
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
