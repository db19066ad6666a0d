"""The certmon services as separate processes (`certmon <service>`, as an operator runs them), each with its own
health port and log file: started together, signalled and restarted one at a time (same port, same log), asked
for readiness, stopped with SIGTERM. Used by the outage test and the fault harness."""

import asyncio
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from tests.support.rabbitmq_node import free_port

CERTMON = Path(sys.executable).with_name("certmon")
#: The schemas whose services publish through a transactional outbox.
SCHEMAS_WITH_OUTBOX = ("scanner", "alarmer", "notifier", "reporter")


@dataclass
class ServiceProcess:
    """One slot: the service it runs, its health port and log, and its current process (None before start)."""

    name: str
    port: int
    log: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        """Whether the current process has not exited."""
        return self.process is not None and self.process.returncode is None


class ServiceProcesses:
    """The certmon processes named by `names` (a name twice is two replicas), in `directory`, with `env`."""

    def __init__(self, directory: Path, env: dict[str, str], names: Sequence[str]) -> None:
        self.directory, self.env = directory, env
        self.slots = [
            ServiceProcess(name, free_port(), directory / f"{index}-{name}.log") for index, name in enumerate(names)
        ]

    async def start(self) -> None:
        """Start every slot."""
        for index in range(len(self.slots)):
            await self.start_one(index)

    async def start_one(self, index: int) -> None:
        """(Re)start slot `index` on its port, appending to its log."""
        slot = self.slots[index]
        with slot.log.open("ab") as log:
            slot.process = await asyncio.create_subprocess_exec(
                str(CERTMON),
                slot.name,
                env={**self.env, "CERTMON_HTTP_PORT": str(slot.port)},
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )

    async def signal_one(self, index: int, signum: signal.Signals, *, wait: float = 40.0) -> int | None:
        """Send `signum` to slot `index` and wait for it to exit; its exit code (None: killed after `wait` s)."""
        process = self.slots[index].process
        assert process is not None
        if process.returncode is None:
            process.send_signal(signum)
        return await _exit_code(process, wait)

    async def wait_for_log(self, event: str, *, seconds: float) -> None:
        """Wait until every process has logged `event` (processes start slowly on a busy machine)."""
        deadline = time.monotonic() + seconds
        while not all(event in slot.log.read_text(errors="replace") for slot in self.slots if slot.log.exists()):
            if time.monotonic() > deadline:
                raise AssertionError(f"not every process logged {event} within {seconds} s\n" + self.logs())
            await asyncio.sleep(0.25)

    def running(self) -> list[str]:
        """Names of the processes that have not exited."""
        return [slot.name for slot in self.slots if slot.running]

    async def readiness(self) -> list[int]:
        """The status code of each process's `/healthz/ready` (0 when it does not answer)."""
        codes = []
        async with httpx.AsyncClient(timeout=3) as client:
            for slot in self.slots:
                try:
                    codes.append((await client.get(f"http://127.0.0.1:{slot.port}/healthz/ready")).status_code)
                except httpx.HTTPError:
                    codes.append(0)
        return codes

    async def wait_until_ready(self, seconds: float) -> float:
        """Seconds until every process answers 200 on `/healthz/ready`; AssertionError after `seconds`."""
        started = time.monotonic()
        while (codes := await self.readiness()) != [200] * len(self.slots):
            if time.monotonic() - started > seconds:
                raise AssertionError(f"readiness {codes} after {seconds} s\n" + self.logs())
            await asyncio.sleep(0.25)
        return time.monotonic() - started

    async def stop(self) -> list[int | None]:
        """SIGTERM every process and collect the exit codes (None for one that had to be killed)."""
        for slot in self.slots:
            if slot.process is not None and slot.process.returncode is None:
                slot.process.send_signal(signal.SIGTERM)
        return [await _exit_code(slot.process, 40.0) if slot.process else None for slot in self.slots]

    def logs(self, lines: int = 30) -> str:
        """The tail of every process's log, for a failing assertion's message."""
        parts = []
        for slot in self.slots:
            text = slot.log.read_text(errors="replace") if slot.log.exists() else ""
            kept = [line for line in text.splitlines() if '"logger": "aio' not in line]
            parts.append(f"--- {slot.log.name}\n" + "\n".join(kept[-lines:]))
        return "\n".join(parts)


async def _exit_code(process: asyncio.subprocess.Process, wait: float) -> int | None:
    """The process's exit code once it exits, or None when it had to be killed after `wait` seconds."""
    try:
        async with asyncio.timeout(wait):
            return await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()
        return None


async def outbox_rows(url: str) -> tuple[dict[str, list[asyncpg.Record]], int]:
    """Each outbox's rows in the order it wrote them, and how many are still unpublished in all."""
    conn = await asyncpg.connect(url)
    try:
        rows = {
            schema: await conn.fetch(f"SELECT event_id, created_at, published_at FROM {schema}.outbox ORDER BY seq")
            for schema in SCHEMAS_WITH_OUTBOX
        }
        return rows, sum(row["published_at"] is None for table in rows.values() for row in table)
    finally:
        await conn.close()
