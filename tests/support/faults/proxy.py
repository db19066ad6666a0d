"""A TCP proxy on 127.0.0.1 between the services and the broker or the database, so a test can cut every
connection at once (as a NAT timeout, a load balancer's failover or a network blip does) without stopping either.

Each accepted connection opens its own connection upstream; bytes are copied both ways until either side closes or
fails, and then both are reset at once (a half-open connection, whose client would wait for an answer that never
comes, is not what a restart of the server looks like). `cut_all()` resets every connection on both sides, and may
refuse new ones for a while (a short partition). `drop_all()` stops forwarding on every open connection without
closing either side, as a network path that dies silently does (a firewall's state expiring, a node vanishing):
neither peer learns of it until it times out."""

import asyncio
import contextlib
import time


class TcpProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`upstream_port`; `start()` binds, `close()` stops and cuts."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._dropped: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Future[None]] = set()
        self._refuse_until = 0.0

    async def start(self) -> int:
        """Listen on a free port; returns it."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def cut_all(self, *, refuse_for: float = 0.0) -> int:
        """Reset every open connection, both sides, and refuse new ones for `refuse_for` seconds; returns how many
        connections were cut."""
        self._refuse_until = time.monotonic() + refuse_for
        cut = list(self._writers)
        for writer in cut:
            writer.transport.abort()
        self._writers.clear()
        return len(cut) // 2

    def drop_all(self) -> None:
        """Stop forwarding on every open connection and leave both sides open (and unanswered)."""
        self._dropped |= self._writers
        self._writers.clear()
        for pump in self._pumps:
            pump.cancel()

    async def close(self) -> None:
        """Stop listening and cut what is open (the dropped connections too)."""
        if self._server is not None:
            self._server.close()
        self.cut_all()
        for writer in self._dropped:
            writer.transport.abort()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Cancelled when the run ends: the connection is reset like any other, and the cancellation is not
        # re-raised, since asyncio's stream server would log it as the handler's failure.
        with contextlib.suppress(asyncio.CancelledError):
            await self._forward(reader, writer)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if time.monotonic() < self._refuse_until:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:  # upstream is down: the client sees its connection reset, as it would without a proxy
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        pumps = {asyncio.ensure_future(_pump(reader, up_writer)), asyncio.ensure_future(_pump(up_reader, writer))}
        self._pumps |= pumps
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            self._pumps -= pumps
            self._writers -= {writer, up_writer}
            for side in (writer, up_writer):
                if side not in self._dropped:
                    side.transport.abort()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes from `reader` to `writer` until end of stream or an error on either side."""
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
