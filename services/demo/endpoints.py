"""TLS endpoints on 127.0.0.1 that present a chosen chain: the demo's estate, and the test suite's servers."""

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path


def server_context(cert_path: Path, key_path: Path, *, legacy: bool = False) -> ssl.SSLContext:
    """A server context presenting `cert_path` (leaf first, then the chain as given)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if legacy:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # before load_cert_chain, so weak keys load
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


@contextlib.asynccontextmanager
async def tls_server(ctx: ssl.SSLContext, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[int]:
    """Serve TLS, answering nothing after the handshake; yields the bound port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):  # probes hang up abruptly after the handshake; that is normal
            await reader.read(1024)
        writer.close()

    server = await asyncio.start_server(handle, host, port, ssl=ctx, ssl_handshake_timeout=5)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await server.wait_closed()
