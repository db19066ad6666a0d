"""Bounds on concurrent scans: a global cap, and a per-host cap so one server is never flooded."""

import asyncio
import contextlib
from collections.abc import AsyncIterator


class ScanLimiter:
    """At most `total` scans at once, and at most `per_host` of them against the same host."""

    def __init__(self, *, total: int, per_host: int) -> None:
        self._total = asyncio.Semaphore(total)
        self._per_host = per_host
        self._hosts: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        """Hold a scan slot for `host` for the duration of the block."""
        semaphore, users = self._hosts.get(host, (asyncio.Semaphore(self._per_host), 0))
        self._hosts[host] = (semaphore, users + 1)
        try:
            async with semaphore, self._total:
                yield
        finally:
            semaphore, users = self._hosts[host]
            if users == 1:
                del self._hosts[host]  # forget idle hosts so the map does not grow with every target ever seen
            else:
                self._hosts[host] = (semaphore, users - 1)

    def hosts_in_use(self) -> int:
        """How many hosts currently hold or wait for a slot."""
        return len(self._hosts)
