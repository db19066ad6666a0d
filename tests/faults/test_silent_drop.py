"""A database connection that dies silently (no reset reaches either peer: a firewall's state expiring, a node
vanishing, a failover that leaves the old primary's address unanswered) fails the statement on it within the
pool's command timeout, and the pool goes on with a new connection, so a handler is retried instead of holding
its message forever. The fault harness found an alarmer consumer waiting on such a statement for good, while its
/healthz/ready answered 200 (seed 18); `shared.db.create_pool` has had a command timeout since."""

import asyncio

import pytest

from shared.db import create_pool
from tests.support.faults.proxy import TcpProxy

pytestmark = [pytest.mark.faults, pytest.mark.integration]

COMMAND_TIMEOUT = 2.0
#: asyncpg also waits for its cancel request after the timeout: the bound leaves room for that, and no more.
BOUND_SECONDS = 20.0


async def test_a_statement_on_a_silently_dropped_connection_fails_and_the_pool_goes_on(database_url: str) -> None:
    """Through a proxy that stops forwarding without closing anything, a pooled statement raises within 20 s
    (not cancelled from outside: it must end by itself), and the pool answers the next one on a new connection."""
    upstream = int(database_url.rsplit(":", 1)[1].split("/", 1)[0])
    proxy = TcpProxy(upstream)
    await proxy.start()
    pool = await create_pool(
        database_url.replace(f":{upstream}/", f":{proxy.port}/"),
        min_size=1,
        max_size=1,
        command_timeout=COMMAND_TIMEOUT,
    )
    try:
        assert await pool.fetchval("SELECT 1") == 1
        proxy.drop_all()
        query = asyncio.ensure_future(pool.fetchval("SELECT 1"))
        done, _ = await asyncio.wait({query}, timeout=BOUND_SECONDS)
        if not done:
            pool.terminate()  # resets the connection: the statement still waiting fails now
            await asyncio.wait({query}, timeout=5)
        failure = query.exception() if query.done() else None
        assert done, f"the statement still waited after {BOUND_SECONDS} s"
        assert isinstance(failure, TimeoutError), failure
        assert await pool.fetchval("SELECT 2") == 2  # on a new connection: the proxy forwards those as before
    finally:
        pool.terminate()
        await proxy.close()
