"""docker-compose.yml's healthcheck command, run as Docker runs it: healthy while /healthz/ready answers 200,
unhealthy on 503 and when nothing listens."""

import http.server
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]


def _healthcheck() -> list[str]:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    test: list[str] = services["scanner"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    return [sys.executable, *test[2:]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def ready_server() -> Iterator[tuple[int, list[int]]]:
    """A server on 127.0.0.1 answering /healthz/ready with the status in the list it yields (200 at first)."""
    status = [200]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status[0] if self.path == "/healthz/ready" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], status
    finally:
        server.shutdown()
        server.server_close()


def _run(port: int) -> int:
    env = {"CERTMON_HTTP_PORT": str(port), "PATH": "/usr/bin:/bin"}
    return subprocess.run(_healthcheck(), env=env, capture_output=True, timeout=30, check=False).returncode


def test_ready_is_healthy_and_unready_is_not(ready_server: tuple[int, list[int]]) -> None:
    """200 from /healthz/ready exits 0; 503 (not ready) exits non-zero."""
    port, status = ready_server
    assert _run(port) == 0
    status[0] = 503
    assert _run(port) != 0


def test_nothing_listening_is_unhealthy() -> None:
    """A service whose HTTP server is not up is unhealthy."""
    assert _run(_free_port()) != 0
