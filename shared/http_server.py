"""uvicorn run programmatically inside the service's event loop, on a socket we bind ourselves.

Binding first means a taken port raises `OSError` here (uvicorn would `sys.exit` inside a task), and port 0
gives an ephemeral port that `port` reports. Signals stay with the composition root, not with uvicorn.
"""

import asyncio
import contextlib
import socket
from collections.abc import Generator

import uvicorn
from starlette.types import ASGIApp

STARTUP_TIMEOUT_SECONDS = 10.0


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves SIGINT/SIGTERM to whoever runs the process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Install no signal handlers."""
        yield


class HttpServer:
    """Serves an ASGI app on `host:port` until `stop()`."""

    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        self._app, self._host, self._port = app, host, port
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._bound_port: int | None = None

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0); only valid once started."""
        if self._bound_port is None:
            raise RuntimeError("the HTTP server is not started")
        return self._bound_port

    async def start(self) -> None:
        """Bind, then serve in a background task; returns once the server accepts connections."""
        sock = _bind(self._host, self._port)
        self._bound_port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app, log_config=None, lifespan="off", ws="none", access_log=False, server_header=False
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name=f"http:{self._port}")
        async with asyncio.timeout(STARTUP_TIMEOUT_SECONDS):
            while not self._server.started:
                if self._task.done():
                    await self._task  # surface the failure
                    raise RuntimeError("the HTTP server stopped during startup")
                await asyncio.sleep(0.01)

    async def stop(self, within: float | None = None) -> None:
        """Stop accepting, let in-flight requests finish (for up to `within` seconds; None: however long they take),
        close."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), within)
        except TimeoutError:
            self._server.force_exit = True  # stop waiting for the requests (a long download): the process is leaving
            await self._task
        self._server, self._task, self._bound_port = None, None, None


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
