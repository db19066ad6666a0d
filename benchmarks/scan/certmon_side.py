"""The certmon side of the benchmark, run as its own process so its peak memory is its own.

`python -m benchmarks.scan.certmon_side MODE ENDPOINTS.json CONCURRENCY ROUNDS` prints one JSON line:
MODE `full` (certmon's full profile: versions and suites per endpoint, connections), `expiry` (certmon's
expiry profile, ROUNDS passes) or `bare` (a bare asyncio loop that only completes TLS handshakes).
"""

import asyncio
import datetime as dt
import json
import logging
import ssl
import sys
import time
import warnings
from typing import Any

import structlog

from services.scanner.service_layer.observe import observe
from shared.events import Target

NOW = dt.datetime.now(dt.UTC)


def _quiet() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))


async def _bounded(concurrency: int, jobs: list[Any]) -> list[Any]:
    slots = asyncio.Semaphore(concurrency)

    async def one(job: Any) -> Any:
        async with slots:
            return await job

    return await asyncio.gather(*(one(job) for job in jobs))


async def full(ports: list[int], concurrency: int) -> dict[str, Any]:
    """certmon `full` on every endpoint once."""
    targets = [Target(host="127.0.0.1", port=port, sni="localhost", profile="full") for port in ports]
    started = time.perf_counter()
    observations = await _bounded(concurrency, [observe(target, now=NOW) for target in targets])
    elapsed = time.perf_counter() - started
    return {
        "seconds": elapsed,
        "results": {
            str(obs.target.port): {
                "versions": obs.tls.versions,
                "suites": {version: sorted(names) for version, names in obs.tls.cipher_suites.items()},
                "connections": obs.tls.connections,
                "complete": obs.tls.enumerated,
                "error": obs.error.message if obs.error else None,
            }
            for obs in observations
        },
    }


async def expiry(ports: list[int], concurrency: int, rounds: int) -> dict[str, Any]:
    """certmon `expiry` on every endpoint, `rounds` times."""
    targets = [Target(host="127.0.0.1", port=port, sni="localhost") for port in ports] * rounds
    started = time.perf_counter()
    observations = await _bounded(concurrency, [observe(target, now=NOW) for target in targets])
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "handshakes": len(targets), "errors": sum(1 for o in observations if o.error)}


async def bare(ports: list[int], concurrency: int, rounds: int) -> dict[str, Any]:
    """Only TLS handshakes: connect, handshake, hang up; the floor any scanner sits on."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1

    async def handshake(port: int) -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")
        except (OSError, ssl.SSLError):
            return False
        writer.transport.abort()
        return True

    jobs = [handshake(port) for _ in range(rounds) for port in ports]
    started = time.perf_counter()
    results = await _bounded(concurrency, jobs)
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "handshakes": len(jobs), "errors": results.count(False)}


def main() -> None:
    """Run one mode and print its JSON line."""
    _quiet()
    mode, path, concurrency, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with open(path) as handle:
        ports = [endpoint["port"] for endpoint in json.load(handle)["endpoints"]]
    if mode == "full":
        result = asyncio.run(full(ports, concurrency))
    elif mode == "expiry":
        result = asyncio.run(expiry(ports, concurrency, rounds))
    else:
        result = asyncio.run(bare(ports, concurrency, rounds))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
