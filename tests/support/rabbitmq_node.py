"""A RabbitMQ node of the test's own, on spare ports of 127.0.0.1 with its own data directory, so a test may stop
and restart it without touching the machine's broker (Debian's `rabbitmq-server` package)."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
CTL = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")


def rabbitmq_available() -> bool:
    """Whether Debian's RabbitMQ scripts are installed here."""
    return SERVER.exists() and CTL.exists()


def free_port() -> int:
    """A TCP port nothing listens on at the moment, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class RabbitNode:
    """One node: `start()` and `stop()` as often as the test likes; `url` stays the same across restarts."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.name = f"certmon-test-{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self._process: subprocess.Popen[bytes] | None = None
        home = directory / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(uuid.uuid4().hex.upper())
        cookie.chmod(0o400)
        (directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        (directory / "enabled_plugins").write_text("[].\n")
        self._env = {
            **os.environ,
            "HOME": str(home),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def start(self, timeout: float = 60.0) -> None:
        """Start the node and return once it accepts AMQP connections."""
        log = (self.directory / "server.log").open("ab")
        # A session of its own, so that a node that ignores `rabbitmqctl stop` can be killed with its children.
        self._process = subprocess.Popen(
            [str(SERVER)],
            env=self._env,
            cwd=self.directory,  # where a crashing node drops its core dump
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not _port_open(self.port):
            if self._process.poll() is not None:
                raise RuntimeError(f"RabbitMQ node exited with {self._process.returncode}; see {self.directory}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"RabbitMQ node did not listen on {self.port} within {timeout} s")
            time.sleep(0.2)

    def queue_counts(self) -> dict[str, tuple[int, int]]:
        """Each queue's ready and unacknowledged messages (RuntimeError when rabbitmqctl cannot tell)."""
        listed = subprocess.run(
            [
                str(CTL),
                "-n",
                self.name,
                "-q",
                "list_queues",
                "--no-table-headers",
                "name",
                "messages_ready",
                "messages_unacknowledged",
            ],
            env=self._env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if listed.returncode != 0:
            raise RuntimeError(f"rabbitmqctl list_queues failed: {listed.stderr[-1000:]}")
        counts = {}
        for line in listed.stdout.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                counts[parts[0]] = (int(parts[1]), int(parts[2]))
        return counts

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the node (its data stays, as on a real restart)."""
        if self._process is None:
            return
        subprocess.run(
            [str(CTL), "-n", self.name, "stop"], env=self._env, capture_output=True, timeout=timeout, check=False
        )
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=10)
        self._process = None


@contextlib.contextmanager
def rabbitmq_node(directory: Path) -> Iterator[RabbitNode]:
    """A started node in `directory`, stopped and deleted afterwards."""
    node = RabbitNode(directory)
    node.start()
    try:
        yield node
    finally:
        node.stop()
        shutil.rmtree(directory / "mnesia", ignore_errors=True)
