"""The scan limiter: a global cap and a per-host cap on concurrent scans."""

import asyncio

from services.scanner.service_layer.scan_limiter import ScanLimiter


async def _peak(limiter: ScanLimiter, hosts: list[str]) -> dict[str, int]:
    running: dict[str, int] = {}
    peak: dict[str, int] = {"total": 0}

    async def scan(host: str) -> None:
        async with limiter.slot(host):
            running[host] = running.get(host, 0) + 1
            peak[host] = max(peak.get(host, 0), running[host])
            peak["total"] = max(peak["total"], sum(running.values()))
            await asyncio.sleep(0.01)
            running[host] -= 1

    await asyncio.gather(*(scan(h) for h in hosts))
    return peak


async def test_one_host_never_gets_more_than_its_cap() -> None:
    """Twenty scans of one host run at most four at a time."""
    peak = await _peak(ScanLimiter(total=64, per_host=4), ["a.example"] * 20)
    assert peak["a.example"] == 4


async def test_total_cap_holds_across_hosts() -> None:
    """Scans of many hosts run at most `total` at a time, each host within its own cap."""
    hosts = [f"h{i}.example" for i in range(10)] * 3
    peak = await _peak(ScanLimiter(total=5, per_host=2), hosts)
    assert peak["total"] == 5
    assert max(v for k, v in peak.items() if k != "total") <= 2


async def test_idle_hosts_are_forgotten() -> None:
    """Once a host's scans finish, the limiter keeps no state for it."""
    limiter = ScanLimiter(total=8, per_host=2)
    await _peak(limiter, ["a.example", "b.example", "a.example"])
    assert limiter.hosts_in_use() == 0
