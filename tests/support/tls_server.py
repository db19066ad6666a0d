"""Real TLS servers on 127.0.0.1 for tests: asyncio servers presenting a given chain, and hostile peers."""

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path


def server_context(cert_path: Path, key_path: Path, *, legacy: bool = False) -> ssl.SSLContext:
    """A server context presenting `cert_path` (leaf first, then the chain as given)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if legacy:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # before load_cert_chain, so weak keys load
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


@contextlib.asynccontextmanager
async def tls_server(ctx: ssl.SSLContext, host: str = "127.0.0.1") -> AsyncIterator[int]:
    """Serve TLS on an ephemeral port, answering nothing after the handshake; yields the port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):  # clients of a probe hang up abruptly; that is normal here
            await reader.read(1024)
        writer.close()

    server = await asyncio.start_server(handle, host, 0, ssl=ctx, ssl_handshake_timeout=5)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


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
