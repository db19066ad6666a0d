"""A local HTTP server on 127.0.0.1 serving caIssuers responses: fixed bodies, a stall, and a request count."""

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class AiaServer:
    """What the server answers per path, how many requests each path got, and its base URL."""

    base: str = ""
    bodies: dict[str, bytes] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        """The full URL of `path` on this server."""
        return self.base + path


def _handler(state: AiaServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits[self.path] = state.hits.get(self.path, 0) + 1
            if self.path == "/stall":  # accept, then say nothing until the test ends
                state.release.wait(10)
                return
            body = state.bodies.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/pkix-cert")
            if not self.path.startswith("/stream"):  # /stream… paths do not announce their length
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            return

    return Handler


@pytest.fixture
def aia_server() -> Iterator[AiaServer]:
    """An HTTP server on 127.0.0.1 (ephemeral port) in a thread, stopped and closed after the test."""
    state = AiaServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
