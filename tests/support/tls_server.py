"""Real TLS servers on 127.0.0.1 for tests (the demo's, see `services/demo/endpoints.py`) and hostile peers."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from services.demo.endpoints import server_context, tls_server

__all__ = ["raw_server", "server_context", "tls_server"]


@contextlib.asynccontextmanager
async def raw_server(
    behaviour: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]], host: str = "127.0.0.1"
) -> AsyncIterator[int]:
    """Serve plain TCP with a hostile `behaviour` (garbage, silence, trickle); yields the port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await behaviour(reader, writer)
        writer.close()

    server = await asyncio.start_server(handle, host, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await server.wait_closed()
