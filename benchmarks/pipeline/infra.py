"""What the benchmark starts and removes: a RabbitMQ vhost, a PostgreSQL database, nginx, an SMTP sink, blackhole
listeners and the five services as processes. Everything binds or connects to 127.0.0.1 only.

Each `start`/`create` registers its own undoing on a `Cleanup`, which runs them in reverse order whatever happens
(an exception, Ctrl-C, SIGTERM).
"""

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[2]
CERTMON = ROOT / ".venv" / "bin" / "certmon"
HOST = "127.0.0.1"
ADMIN_DSN = f"postgresql://postgres@{HOST}:5432/postgres"


class Cleanup:
    """Undo actions, run last-registered first; each runs once and a failing one does not stop the others."""

    def __init__(self) -> None:
        self._actions: list[tuple[str, Callable[[], None]]] = []

    def push(self, what: str, action: Callable[[], None]) -> None:
        self._actions.append((what, action))

    def run(self) -> None:
        while self._actions:
            what, action = self._actions.pop()
            try:
                action()
            except Exception as exc:  # keep cleaning up
                print(f"cleanup of {what} failed: {exc}")


def free_ports(count: int) -> list[int]:
    """`count` distinct ports the kernel says are free on 127.0.0.1 now (bound together, then released)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# --- RabbitMQ and PostgreSQL -------------------------------------------------------------------------------------


def create_vhost(name: str, cleanup: Cleanup) -> str:
    """A fresh vhost with full permissions for guest; returns the AMQP URL."""
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], check=True, capture_output=True)
    cleanup.push(f"vhost {name}", lambda: _rabbitmqctl("delete_vhost", name))
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )
    return f"amqp://guest:guest@{HOST}:5672/{name}"


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


def queue_lengths(vhost: str) -> dict[str, int]:
    """Ready + unacknowledged messages per queue of `vhost` (rabbitmqctl: the management API is not enabled)."""
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "--no-table-headers", "name", "messages"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    lengths = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            lengths[parts[0]] = int(parts[1])
    return lengths


async def create_database(name: str, cleanup: Cleanup) -> str:
    """A fresh database on the local PostgreSQL; returns its URL."""
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    cleanup.push(f"database {name}", lambda: asyncio.run(_drop_database(name)))
    return f"postgresql://postgres@{HOST}:5432/{name}"


async def _drop_database(name: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# --- nginx ---------------------------------------------------------------------------------------------------------


@dataclass
class Nginx:
    """Debian's nginx serving one TLS server block per port, run in the foreground as our child."""

    prefix: Path
    blocks: dict[int, tuple[Path, Path]]  # port -> (certificate, key)
    workers: int = 1
    process: subprocess.Popen[bytes] | None = None

    @property
    def conf(self) -> Path:
        return self.prefix / "nginx.conf"

    def write_conf(self) -> None:
        temp = self.prefix / "tmp"
        temp.mkdir(parents=True, exist_ok=True)
        servers = "\n".join(
            f"  server {{ listen {HOST}:{port} ssl; ssl_certificate {cert}; ssl_certificate_key {key}; return 204; }}"
            for port, (cert, key) in sorted(self.blocks.items())
        )
        self.conf.write_text(
            f"""daemon off;
master_process on;
worker_processes {self.workers};
worker_rlimit_nofile 16384;
pid {self.prefix}/nginx.pid;
error_log {self.prefix}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {temp}/body;
  proxy_temp_path {temp}/proxy;
  fastcgi_temp_path {temp}/fastcgi;
  uwsgi_temp_path {temp}/uwsgi;
  scgi_temp_path {temp}/scgi;
  ssl_protocols TLSv1.2 TLSv1.3;
{servers}
}}
"""
        )

    def start(self, cleanup: Cleanup) -> None:
        self.write_conf()
        command = [
            "/usr/sbin/nginx",
            "-p",
            str(self.prefix),
            "-e",
            str(self.prefix / "error.log"),
            "-c",
            str(self.conf),
        ]
        check = subprocess.run([*command, "-t"], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t failed: {check.stderr[-2000:]}")
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cleanup.push("nginx", self.stop)
        deadline = time.monotonic() + 20
        last = max(self.blocks)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {(self.prefix / 'error.log').read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, last), timeout=1):
                return
            time.sleep(0.1)
        raise RuntimeError("nginx did not listen within 20 s")

    def reload(self) -> None:
        """Re-read the certificates (SIGHUP: new workers with the new files, old ones finish)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

    def pids(self) -> list[int]:
        import psutil  # type: ignore[import-untyped]

        if self.process is None or self.process.poll() is not None:
            return []
        master = psutil.Process(self.process.pid)
        return [master.pid, *(child.pid for child in master.children())]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- SMTP sink and blackholes (threads of this process with their own event loop) ----------------------------


@dataclass
class Mail:
    at: float  # time.monotonic() when received
    subject: str
    recipients: list[str]


@dataclass
class SmtpSink:
    """aiosmtpd on 127.0.0.1: keeps the subject and arrival time of every message."""

    port: int
    mails: list[Mail] = field(default_factory=list)
    _controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content or envelope.content)
        subject = str(make_header(decode_header(message.get("Subject", ""))))
        self.mails.append(Mail(time.monotonic(), subject, list(envelope.rcpt_tos)))
        return "250 OK"

    def start(self, cleanup: Cleanup) -> None:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname=HOST, port=self.port)
        self._controller.start()
        cleanup.push("smtp sink", self._controller.stop)


class Blackholes:
    """Listeners that accept TCP connections and never send a byte (they read and discard, so a client's hello
    goes nowhere): a scanner waits for its handshake timeout."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.base_events.Server] = []

    async def _sink(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while await reader.read(65536):
                pass
        writer.close()

    async def _open(self) -> None:
        for port in self.ports:
            self._servers.append(await asyncio.start_server(self._sink, HOST, port, backlog=1024))

    def start(self, cleanup: Cleanup) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._open(), self._loop).result(timeout=30)
        cleanup.push("blackholes", self.stop)

    def stop(self) -> None:
        async def close() -> None:
            for server in self._servers:
                server.close()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


# --- the services ----------------------------------------------------------------------------------------------


@dataclass
class Service:
    """One `certmon <service>` process."""

    name: str  # e.g. scanner-1
    command: str  # scanner | evaluator | ...
    http_port: int
    process: subprocess.Popen[bytes]
    log: Path
    stopped: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)
        self.stopped = True

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)
        self.stopped = False

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        if self.stopped:
            self.resume()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def service_env(*, amqp_url: str, database_url: str, config: Path, data_dir: Path, http_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTMON_")}
    env.update(
        CERTMON_AMQP_URL=amqp_url,
        CERTMON_DATABASE_URL=database_url,
        CERTMON_CONFIG=str(config),
        CERTMON_HTTP_HOST=HOST,
        CERTMON_HTTP_PORT=str(http_port),
        CERTMON_PUBLIC_URL=f"http://{HOST}:{http_port}",
        CERTMON_DATA_DIR=str(data_dir),
        CERTMON_REPORTS_URL=str(data_dir / "reports"),
        CERTMON_LINK_SECRET=secrets.token_hex(32),
        CERTMON_LOG_FORMAT="json",
    )
    return env


def start_service(name: str, command: str, *, workdir: Path, env_common: dict[str, str], cleanup: Cleanup) -> Service:
    port = free_ports(1)[0]
    data_dir = workdir / "data" / name
    data_dir.mkdir(parents=True, exist_ok=True)
    env = service_env(
        amqp_url=env_common["amqp_url"],
        database_url=env_common["database_url"],
        config=Path(env_common["config"]),
        data_dir=data_dir,
        http_port=port,
    )
    env["CERTMON_LINK_SECRET"] = env_common["link_secret"]
    log = workdir / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen([str(CERTMON), command], cwd=data_dir, env=env, stdout=out, stderr=subprocess.STDOUT)
    service = Service(name, command, port, process, log)
    cleanup.push(name, service.stop)
    return service


async def wait_ready(services: list[Service], within: float = 90.0) -> None:
    """Until every service answers 200 on /healthz/ready; raises with the log tail of one that died or hung."""
    deadline = time.monotonic() + within
    pending = list(services)
    async with httpx.AsyncClient(timeout=2) as client:
        while pending:
            for service in list(pending):
                if service.process.poll() is not None:
                    raise RuntimeError(f"{service.name} exited ({service.process.returncode}):\n{service.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    answer = await client.get(f"http://{HOST}:{service.http_port}/healthz/ready")
                    if answer.status_code == 200:
                        pending.remove(service)
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"{pending[0].name} not ready in {within:.0f} s:\n{pending[0].tail()}")
            if pending:
                await asyncio.sleep(0.2)


async def consumed_totals(services: list[Service]) -> dict[tuple[str, str], float]:
    """Sum of `certmon_messages_consumed_total` over every process, by (queue, event type), all outcomes.

    Reads `/metrics?only=process` (the reporter's estate series take seconds to render at 20,000 targets, and
    are not counted here); a process that does not answer in three tries fails the benchmark rather than counting
    as zero."""
    totals: dict[tuple[str, str], float] = {}
    async with httpx.AsyncClient(timeout=30) as client:
        for service in services:
            if service.stopped or service.process.poll() is not None:
                continue
            text = await _metrics_text(client, service)
            for line in text.splitlines():
                if not line.startswith("certmon_messages_consumed_total{"):
                    continue
                labels, value = line.rsplit(" ", 1)
                kind = labels.split('event_type="', 1)[1].split('"', 1)[0]
                queue = labels.split('queue="', 1)[1].split('"', 1)[0]
                totals[queue, kind] = totals.get((queue, kind), 0.0) + float(value)
    return totals


async def _metrics_text(client: httpx.AsyncClient, service: Service) -> str:
    for attempt in range(3):
        try:
            response = await client.get(f"http://{HOST}:{service.http_port}/metrics", params={"only": "process"})
            response.raise_for_status()
            return response.text
        except httpx.HTTPError as exc:
            error = exc
            await asyncio.sleep(1 + attempt)
    raise RuntimeError(f"{service.name}: /metrics did not answer in three tries: {error!r}")


def by_event_type(totals: dict[tuple[str, str], float]) -> dict[str, float]:
    answer: dict[str, float] = {}
    for (_, kind), value in totals.items():
        answer[kind] = answer.get(kind, 0.0) + value
    return answer


def reporter_evaluations(totals: dict[tuple[str, str], float]) -> int:
    """Evaluations the reporter consumed and settled (it acks after its transaction commits): the pipeline's end.
    (Its `evaluations` table no longer grows on an unchanged re-evaluation: that is a sighting, not a row.)"""
    return int(
        sum(
            v
            for (queue, kind), v in totals.items()
            if queue.startswith("certmon.reporter.") and kind.startswith("certificate.evaluated")
        )
    )
