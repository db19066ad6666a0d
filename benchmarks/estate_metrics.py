"""The reporter's `/metrics` over a large estate, on a throwaway database of the local PostgreSQL.

    .venv/bin/python -m benchmarks.estate_metrics [--targets 10000] [--page-size 1000] [--before CHECKOUT]

Creates `certmon_bench_<random>`, migrates the reporter's schema and records one evaluation per target through
`History.record_evaluation` (what the reporter's handler runs), for a synthetic estate: endpoints presenting a
leaf and an intermediate, verified, one in three with a stapled OCSP response; one target in twenty a file, one in
twenty unreachable. Then a fresh process (so its memory is the reporter's, not the seeding's) serves the reporter's
app on a local port with uvicorn, and this one scrapes `/metrics` over TCP, streaming: once alone, then twice at
once (two Prometheus replicas). It prints samples, bytes, wall times and the serving process's RSS before the
first scrape and at its peak. `--page-size` sets the targets per page read (the whole estate in one page shows what
holding every evaluation costs); `--before` serves the code of another checkout instead (a `git worktree` of an
earlier commit), to measure the route as it was there. The database is dropped afterwards. Not a test.
"""

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from benchmarks.dashboard import ADMIN_URL, LEVELS, NOW  # the same database and clock as the dashboard's
from services.reporter.adapters.history import History
from services.reporter.adapters.http import create_app
from shared.action_links import ActionLinkSigner
from shared.db import create_pool
from shared.events import (
    AlarmSummary,
    CertificateInfo,
    Evaluation,
    ExpiryInfo,
    KeyInfo,
    ObservationError,
    SecurityInfo,
    TargetRef,
)
from shared.events.evaluation import ChainInfo, PresentedCertificate, RevocationInfo, TlsSummary
from shared.events.observation import NegotiatedTls
from shared.http_server import HttpServer
from shared.settings import Settings

SCRIPT = Path(__file__).resolve()


def _intermediate(n: int) -> PresentedCertificate:
    issuer = n % 20
    return PresentedCertificate(
        fingerprint_sha256=f"{issuer:064x}",
        subject=f"CN=Issuing CA {issuer},O=Example Trust,C=US",
        issuer="CN=Example Root,O=Example Trust,C=US",
        serial=f"{issuer + 4096:x}",
        not_before=NOW - timedelta(days=700),
        not_after=NOW + timedelta(days=1100),
    )


def evaluation(n: int) -> Evaluation:
    """Target `n`'s latest evaluation: a file (n % 20 == 0), unreachable (n % 20 == 1), else an endpoint."""
    rng = random.Random(n)
    host = f"h{n:06d}.example.com"
    at = NOW - timedelta(minutes=rng.uniform(0, 600))
    if n % 20 == 1:
        return Evaluation(
            target=TargetRef(host=host, port=443, sni=host),
            target_key=f"{host}:443",
            observed_at=at,
            evaluated_at=at,
            reachable=False,
            error=ObservationError(kind="refused", message="connection refused"),
            alarm=AlarmSummary(level="warning", triggers=["reachability"]),
        )
    not_after = NOW + timedelta(days=rng.uniform(-10, 400))
    subject = f"CN={host},OU=Web,O=Example {n % 97},L=Lyon,C=FR"
    intermediate = _intermediate(n)
    leaf = CertificateInfo(
        fingerprint_sha256=f"{n + 1_000_000:064x}",
        subject=subject,
        issuer=intermediate.subject,
        serial=f"{n * 7919 + 1:x}",
        not_before=not_after - timedelta(days=90),
        not_after=not_after,
        san=[host, f"www.{host}", f"192.0.2.{n % 250 + 1}"],
        key=KeyInfo(type="EC", bits=256, curve="secp256r1"),
        signature_algorithm="ecdsa-with-SHA256",
    )
    presented = PresentedCertificate(
        fingerprint_sha256=leaf.fingerprint_sha256,
        subject=subject,
        issuer=leaf.issuer,
        serial=leaf.serial,
        not_before=leaf.not_before,
        not_after=not_after,
    )
    file = n % 20 == 0
    level = rng.choice(LEVELS)
    return Evaluation(
        target=TargetRef(protocol="file", file=f"/etc/ssl/certs/app-{n}.pem") if file else TargetRef(host=host),
        target_key=f"file:/etc/ssl/certs/app-{n}.pem" if file else f"{host}:443",
        observed_at=at,
        evaluated_at=at,
        reachable=True,
        certificate=leaf,
        chain=ChainInfo(
            presented=[presented, intermediate],
            trusted=True,
            verified_path=[leaf.fingerprint_sha256, intermediate.fingerprint_sha256, "root"],
        ),
        tls=TlsSummary(
            negotiated=None if file else NegotiatedTls(version="TLSv1.3", cipher_suite="TLS_AES_128_GCM_SHA256")
        ),
        expiry=ExpiryInfo(
            days_remaining=(not_after - at).total_seconds() / 86400, status="valid", renewal_window="plan"
        ),
        security=SecurityInfo(grade="A", grade_ignoring_trust="A", score=90),
        alarm=AlarmSummary(level=level, triggers=["expiry"] if level != "ok" else []),
        revocation=(
            RevocationInfo(
                ocsp_stapled=True,
                status="good",
                produced_at=at - timedelta(hours=3),
                next_update=at + timedelta(days=3),
            )
            if n % 3 == 0 and not file
            else None
        ),
    )


async def seed(url: str, targets: int) -> None:
    """One evaluation per target, through `History.record_evaluation`, eight at a time."""
    pool = await create_pool(url, max_size=8)
    history = History(pool)
    await history.migrate()
    started = time.perf_counter()

    async def record(worker: int) -> None:
        for n in range(worker, targets, 8):
            await history.record_evaluation(f"e-{n}", evaluation(n))

    await asyncio.gather(*(record(w) for w in range(8)))
    for table in ("evaluations", "latest"):
        await pool.execute(f"VACUUM ANALYZE reporter.{table}")
    print(f"seeded {targets:,} targets in {time.perf_counter() - started:.0f} s", flush=True)
    await pool.close()


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def serve(url: str, page_size: int | None) -> None:
    """Serve the reporter's app on a free local port; print the port and the RSS, then the peak RSS once stdin
    says so."""
    pool = await create_pool(url, max_size=4)
    options: dict[str, Any] = {}
    if page_size is not None:  # None: the checkout of --before, whose create_app may not take it
        from services.reporter.adapters.metric_source import PostgresLatest

        options["estate"] = PostgresLatest(pool, page_size=page_size)
    app = create_app(
        History(pool),
        Settings(api_tokens=[], api_write_tokens=[]),
        links=ActionLinkSigner(b"benchmark-link-key-0123"),
        clock=lambda: NOW,
        **options,
    )
    server = HttpServer(app, "127.0.0.1", 0)
    await server.start()
    print(json.dumps({"port": server.port, "rss_mib": _rss_mib()}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    print(json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)
    await server.stop()
    await pool.close()


async def scrape(client: httpx.AsyncClient) -> tuple[int, int, float]:
    """One scrape, streamed: (estate samples, bytes, seconds)."""
    started = time.perf_counter()
    samples = size = 0
    in_estate = False
    async with client.stream("GET", "/metrics") as response:
        assert response.status_code == 200, response.status_code
        async for line in response.aiter_lines():
            size += len(line) + 1
            in_estate = in_estate or line.startswith("# HELP certmon_certificates ")
            samples += in_estate and not line.startswith("#")
    return samples, size, time.perf_counter() - started


async def measure(url: str, page_size: int, before: Path | None) -> dict[str, Any]:
    """Start the serving process, scrape it alone and then twice at once, and collect its figures."""
    # Here, not at the top: the serving process of --before imports this module with that checkout's code.
    from services.reporter.adapters.metrics import REUSE_SECONDS

    command = [sys.executable, str(SCRIPT), "--serve", url]
    environment = dict(os.environ)
    if before is None:
        command += ["--page-size", str(page_size)]
    environment["PYTHONPATH"] = str(before or SCRIPT.parents[1])
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=environment
    )
    assert process.stdin is not None and process.stdout is not None
    started = json.loads(await process.stdout.readline())
    base = f"http://127.0.0.1:{started['port']}"
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        samples, size, alone = await scrape(client)
        await asyncio.sleep(REUSE_SECONDS + 1)  # past the reuse of the first scrape's rendering
        together = await asyncio.gather(scrape(client), scrape(client))
    process.stdin.write(b"done\n")
    await process.stdin.drain()
    peak = json.loads(await process.stdout.readline())
    await process.wait()
    return {
        "samples": samples,
        "bytes": size,
        "alone_s": alone,
        "together_s": [t for _, _, t in together],
        "rss_before_mib": started["rss_mib"],
        "peak_rss_mib": peak["peak_rss_mib"],
    }


async def main(args: argparse.Namespace) -> None:
    """Build the throwaway database, measure in a fresh process, print the figures, drop the database."""
    name = f"certmon_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{ADMIN_URL.rpartition('/')[0]}/{name}"
    try:
        await seed(url, args.targets)
        result = await measure(url, args.page_size, args.before)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    code = f"the checkout {args.before}" if args.before else f"pages of {args.page_size:,} targets"
    print(f"\n{args.targets:,} targets, {code}; the serving process scraped over TCP, streamed")
    print(f"samples {result['samples']:,}, body {result['bytes'] / 1e6:.1f} MB")
    together = " and ".join(f"{t:.1f}" for t in result["together_s"])
    print(f"one scrape: {result['alone_s']:.1f} s; two at once: {together} s")
    print(f"RSS before the first scrape {result['rss_before_mib']:.0f} MiB, peak {result['peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--before", type=lambda p: Path(p).resolve(), help="serve the code of this checkout instead")
    parser.add_argument("--serve", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        asyncio.run(serve(arguments.serve, arguments.page_size if "--page-size" in sys.argv else None))
    else:
        asyncio.run(main(arguments))
