"""A PostgreSQL cluster of the test's own, on a spare port of 127.0.0.1 with its own data directory, so a test may
stop and restart it without touching the machine's database (Debian's `postgresql` package: initdb and pg_ctl,
run as the `postgres` user when the tests run as root, since PostgreSQL refuses to run as root)."""

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.support.rabbitmq_node import free_port


def _bin_dir() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    return versions[-1].parent if versions else None


def postgres_available() -> bool:
    """Whether Debian's PostgreSQL server binaries are installed here."""
    return _bin_dir() is not None


class PostgresNode:
    """One cluster: `start()` and `stop()` as often as the test likes; `url` stays the same across restarts."""

    def __init__(self, directory: Path) -> None:
        bin_dir = _bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL server binaries are not installed")
        self._bin = bin_dir
        self.directory = directory
        self.data = directory / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        directory.mkdir(parents=True, exist_ok=True)
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(directory, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def _run(self, tool: str, *args: str, timeout: float = 60.0) -> None:
        command = [str(self._bin / tool), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        done = subprocess.run(command, capture_output=True, timeout=timeout, check=False, cwd=self.directory)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.decode(errors='replace')[-2000:]}")

    def start(self) -> None:
        """Start the cluster and return once it accepts connections."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.directory / "server.log"), "-w", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the cluster (`fast` ends sessions; `immediate` is a crash); its data stays."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")


@contextlib.contextmanager
def postgres_node() -> Iterator[PostgresNode]:
    """A started cluster in a fresh directory, stopped and deleted afterwards. The directory is made under the
    system's temporary folder, not pytest's (whose 0700 parents the `postgres` user cannot enter)."""
    directory = Path(tempfile.mkdtemp(prefix="certmon-pg-"))
    directory.chmod(0o755)
    node = PostgresNode(directory)
    node.start()
    try:
        yield node
    finally:
        with contextlib.suppress(RuntimeError):
            node.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)
