"""A real HTTP server for webhook tests: http.server on 127.0.0.1 in a thread, recording every request and
answering what it is told to (a status, or no answer at all for a while)."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Request:
    """One request as received: path, headers (names lower-cased) and the exact body bytes."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookSink:
    """What the sink received, and how it answers: `statuses` are used one per request (then `status`), and
    `hang` seconds of silence come before each answer."""

    port: int
    status: int = 200
    statuses: list[int] = field(default_factory=list)
    hang: float = 0.0
    received: list[Request] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        """The sink's base URL."""
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def start_webhook_sink() -> Iterator[WebhookSink]:
    """Run a sink on a free port of 127.0.0.1 for the duration of the block."""
    sink = WebhookSink(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            sink.received.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if sink.hang:
                sink.release.wait(sink.hang)
            status = sink.statuses.pop(0) if sink.statuses else sink.status
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Stay quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    sink.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        sink.release.set()
        server.shutdown()
        server.server_close()
