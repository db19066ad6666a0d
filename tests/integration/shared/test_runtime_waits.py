"""A process started while the broker or the database does not answer waits for them instead of exiting."""

import asyncio

import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from shared.runtime import StartAborted, infrastructure
from shared.settings import RuntimeConfigError, Settings
from tests.support.rabbitmq_node import free_port


def _settings(amqp_url: str, database_url: str) -> Settings:
    return Settings(amqp_url=SecretStr(amqp_url), database_url=SecretStr(database_url))


async def test_an_unreachable_database_is_waited_for_until_shutdown(amqp_url: str) -> None:
    """Nothing listens on the database port: each attempt is logged, and shutdown ends the wait cleanly."""
    settings = _settings(amqp_url, f"postgresql://postgres@127.0.0.1:{free_port()}/none")
    give_up = asyncio.Event()
    asyncio.get_running_loop().call_later(2.5, give_up.set)
    with capture_logs() as logs, pytest.raises(StartAborted):
        async with infrastructure(settings, allow_embedded=False, give_up=give_up):
            pytest.fail("connected to a database that does not exist")
    attempts = [e for e in logs if e["event"] == "dependency_unavailable"]
    assert len(attempts) >= 2
    assert {e["dependency"] for e in attempts} == {"database"}
    assert [e["attempt"] for e in attempts] == list(range(1, len(attempts) + 1))


async def test_a_broker_that_comes_late_is_connected_to(amqp_url: str, database_url: str) -> None:
    """The broker answers only on the third attempt (a proxy that starts late): the process then runs."""
    host_port = amqp_url.rsplit("@", 1)[1].split("/")[0]
    upstream_host, upstream_port = host_port.rsplit(":", 1)
    port = free_port()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(upstream_host, int(upstream_port))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    async def open_later() -> asyncio.Server:
        await asyncio.sleep(1.5)
        return await asyncio.start_server(forward, "127.0.0.1", port)

    late = asyncio.create_task(open_later())
    settings = _settings(f"amqp://guest:guest@127.0.0.1:{port}/", database_url)
    with capture_logs() as logs:
        async with infrastructure(settings, allow_embedded=False, give_up=asyncio.Event()) as infra:
            await infra.bus.ping()
    server = await late
    server.close()
    assert any(e["event"] == "dependency_unavailable" and e["dependency"] == "broker" for e in logs)


async def test_without_a_wait_the_first_failure_is_final(amqp_url: str) -> None:
    """Tools that must not hang (tests, one-shot commands) still get the error at once."""
    settings = _settings(amqp_url, f"postgresql://postgres@127.0.0.1:{free_port()}/none")
    with pytest.raises(RuntimeConfigError, match="cannot connect to PostgreSQL"):
        async with infrastructure(settings, allow_embedded=False):
            pass
