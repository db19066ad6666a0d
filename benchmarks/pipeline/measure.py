"""What the benchmark reads while it runs: CPU time and RSS of every process (psutil), and the database's counters.

CPU share = CPU seconds (user + system) a process group used in a window / the window's wall time, so 1.0 is one
core busy the whole time. PostgreSQL's group is every `postgres` process of the cluster and RabbitMQ's is
`beam.smp`: both are shared with whatever else runs on the machine.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
import psutil  # type: ignore[import-untyped]


def pids_named(*names: str) -> list[int]:
    """Pids of the processes with one of these names (read-only: never signalled)."""
    found = []
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] in names:
            found.append(proc.pid)
    return found


def _cpu(pid: int) -> float | None:
    try:
        times = psutil.Process(pid).cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return float(times.user + times.system)


def _rss(pid: int) -> int:
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0


def _machine_busy() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


@dataclass
class Window:
    """CPU seconds and peak RSS per group over one measured stretch."""

    wall: float
    cpu: dict[str, float]
    machine_busy: float  # CPU seconds every process of the machine used (others' work included)
    peak_rss: dict[str, int]
    samples: list[tuple[float, dict[str, int]]] = field(default_factory=list)

    def share(self, group: str) -> float:
        return self.cpu.get(group, 0.0) / self.wall if self.wall > 0 else 0.0


class Sampler:
    """Samples RSS of every group each `period` seconds in a thread; `begin()`/`end()` bracket a window."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]], period: float = 1.0) -> None:
        self.groups = groups
        self.period = period
        self._lock = threading.Lock()
        self._start_cpu: dict[str, dict[int, float]] = {}
        self._start_wall = 0.0
        self._start_machine = 0.0
        self._peak: dict[str, int] = {}
        self._samples: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _pids(self) -> dict[str, list[int]]:
        answer = {}
        for group, pids in self.groups.items():
            try:
                answer[group] = pids()
            except Exception:
                answer[group] = []
        return answer

    def _cpu_snapshot(self) -> dict[str, dict[int, float]]:
        snapshot: dict[str, dict[int, float]] = {}
        for group, pids in self._pids().items():
            snapshot[group] = {pid: cpu for pid in pids if (cpu := _cpu(pid)) is not None}
        return snapshot

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            rss = {group: sum(_rss(pid) for pid in pids) for group, pids in self._pids().items()}
            with self._lock:
                for group, value in rss.items():
                    self._peak[group] = max(self._peak.get(group, 0), value)
                self._samples.append((time.monotonic(), rss))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def begin(self) -> None:
        with self._lock:
            self._peak = {}
            self._samples = []
        self._start_cpu = self._cpu_snapshot()
        self._start_machine = _machine_busy()
        self._start_wall = time.monotonic()

    def end(self) -> Window:
        wall = time.monotonic() - self._start_wall
        now = self._cpu_snapshot()
        cpu = {
            group: sum(value - self._start_cpu.get(group, {}).get(pid, 0.0) for pid, value in pids.items())
            for group, pids in now.items()
        }
        busy = _machine_busy() - self._start_machine
        with self._lock:
            return Window(wall, cpu, busy, dict(self._peak), list(self._samples))


@dataclass
class DbCounters:
    commits: int
    rollbacks: int
    inserted: int
    updated: int
    deleted: int
    wal_lsn: int

    def minus(self, other: "DbCounters") -> "DbCounters":
        return DbCounters(
            self.commits - other.commits,
            self.rollbacks - other.rollbacks,
            self.inserted - other.inserted,
            self.updated - other.updated,
            self.deleted - other.deleted,
            self.wal_lsn - other.wal_lsn,
        )


async def db_counters(conn: asyncpg.Connection) -> DbCounters:
    """The benchmark database's transaction and row counters, and the cluster's WAL position (bytes)."""
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    row = await conn.fetchrow(
        "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted, "
        "pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint AS lsn "
        "FROM pg_stat_database WHERE datname = current_database()"
    )
    assert row is not None
    return DbCounters(
        row["xact_commit"],
        row["xact_rollback"],
        row["tup_inserted"],
        row["tup_updated"],
        row["tup_deleted"],
        row["lsn"],
    )
