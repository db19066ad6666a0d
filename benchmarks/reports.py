"""The weekly, monthly and daily reports over a large history, on a throwaway database of the local PostgreSQL.

    .venv/bin/python -m benchmarks.reports [--targets 100000] [--days 30] [--alarms 10000]

Seeds the same history as `benchmarks.dashboard` (its `seed`: the older days by COPY, the newest day and the alarms
through `History`, the reporter's own writes). Then each report is published in a fresh process of its own (so its
peak RSS is the reporter's building that report, not the seeding's nor another report's): `ReportPublisher.publish`
as the reporter's scheduler calls it, with the builder, renderer and history `bootstrap.build_publisher` wires, into
a folder bucket. Printed per report: the wall time of the whole publication, of the history's queries (and the
database's own `active_time` over the publication), of building the report model, of each format's rendering, and
the process's peak RSS, against issue 15's targets (30 s, 500 MB). The periods: the ISO week and the month that
end the history, the day of its newest evaluations. The database is dropped afterwards unless `--keep`;
`--database URL` measures an already seeded one. Not a test: pytest does not collect it.
"""

import argparse
import asyncio
import hashlib
import json
import resource
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

import asyncpg

from benchmarks.dashboard import NOW, seeded_history
from services.reporter.adapters.bucket import LocalFolderBucket
from services.reporter.adapters.history import History
from services.reporter.adapters.rendering import ReportRenderer
from services.reporter.bootstrap import build_publisher
from services.reporter.domain.catalog import ReportSpec
from services.reporter.domain.periods import Period, period_of, previous
from services.reporter.ports import AnyReport
from shared.config import CertmonConfig
from shared.config.reports import ReportFormat
from shared.db import create_pool

KINDS = ("weekly", "monthly", "daily")
TARGET_SECONDS = 30.0
TARGET_MB = 500.0
_QUERIES = ("estate", "first_seen", "alarm_steps", "daily_levels", "latest", "alarm_events")


def _period(kind: str) -> Period:
    """The period each report covers: the last whole ISO week of the history, its month, its newest day."""
    if kind == "weekly":
        return previous(period_of("weekly", NOW))
    if kind == "monthly":
        return period_of("monthly", NOW)
    return period_of("daily", NOW)


class _TimedHistory(History):
    """The reporter's history, timing the report queries (each, and the time any of them was running)."""

    def __init__(self, pool: asyncpg.Pool, spent: dict[str, float]) -> None:
        super().__init__(pool)
        for name in _QUERIES:
            setattr(self, name, self._timed(name, getattr(self, name)))
        self._spent = spent
        self.intervals: list[tuple[float, float]] = []

    def reading(self) -> float:
        """Seconds in which at least one query was running (the weekly report asks several at once)."""
        total, reached = 0.0, float("-inf")
        for start, end in sorted(self.intervals):
            total += max(0.0, end - max(start, reached))
            reached = max(reached, end)
        return total

    def _timed(self, name: str, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await method(*args, **kwargs)
            finally:
                self.intervals.append((started, time.perf_counter()))
                self._spent[name] = self._spent.get(name, 0.0) + time.perf_counter() - started

        return timed


class _TimedRenderer(ReportRenderer):
    """The reporter's renderer, timing each format (written to its file as it is rendered, as the reporter does)."""

    def __init__(self, spent: dict[str, float]) -> None:
        super().__init__()
        self._spent = spent

    def write(self, report: AnyReport, fmt: ReportFormat, out: BinaryIO) -> None:
        started, at = time.perf_counter(), out.tell()
        super().write(report, fmt, out)
        self._spent[f"render {fmt}"] = time.perf_counter() - started
        self._spent[f"bytes {fmt}"] = out.tell() - at


def _formats() -> tuple[ReportFormat, ...]:
    """HTML, CSV and JSON, and PDF where WeasyPrint and pango load."""
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError):
        return ("html", "csv", "json")
    return ("html", "csv", "json", "pdf")


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _digests(folder: Path) -> dict[str, str]:
    """Each object's SHA-256 (read a block at a time), to compare the output of two versions."""
    digests = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        with path.open("rb") as data:
            digests[path.name] = hashlib.file_digest(data, "sha256").hexdigest()
    return digests


async def _active_ms(pool: asyncpg.Pool) -> float:
    value = await pool.fetchval("SELECT active_time FROM pg_stat_database WHERE datname = current_database()")
    return float(value or 0.0)


async def measure(url: str, kind: str, asked: list[str] | None) -> None:
    """Publish the `kind` report over `url`'s history into a temporary folder; print one JSON line of results."""
    spent: dict[str, float] = {}
    pool = await create_pool(url, max_size=4)
    history = _TimedHistory(pool, spent)
    period = _period(kind)
    # The status report's page lists every certificate, and its PDF takes WeasyPrint 40 s at 2,000 targets: it is
    # laid out only when asked for by `--formats`.
    default = [f for f in _formats() if kind != "daily" or f != "pdf"]
    formats = tuple(f for f in _formats() if f in (asked or default))
    spec = ReportSpec(kind=kind, formats=formats)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(prefix="certmon-bench-reports-") as folder:
        publisher = build_publisher(
            CertmonConfig(), history, LocalFolderBucket(Path(folder)), renderer=_TimedRenderer(spent)
        )
        await pool.execute("SELECT pg_stat_clear_snapshot()")
        active = await _active_ms(pool)
        started = time.perf_counter()
        publication = await publisher.publish(spec, period, now=period.end + timedelta(hours=6), rebuild=True)
        spent["wall"] = time.perf_counter() - started
        await asyncio.sleep(0.6)  # backends report their statistics at most every 500 ms
        await pool.execute("SELECT pg_stat_clear_snapshot()")
        spent["database active"] = (await _active_ms(pool) - active) / 1000
        written = await asyncio.to_thread(_size, Path(folder))
        digests = await asyncio.to_thread(_digests, Path(folder))
    await pool.close()
    spent["queries"] = history.reading()
    spent["rendering"] = sum(v for k, v in spent.items() if k.startswith("render "))
    spent["model"] = spent["wall"] - spent["queries"] - spent["rendering"]
    result = {
        "kind": kind,
        "period": period.label,
        "outcome": publication.outcome,
        "formats": list(formats),
        "written_bytes": written,
        "sha256": digests,
        "spent": spent,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6,
    }
    print(json.dumps(result))


async def _measure_in_child(url: str, kind: str, formats: list[str] | None) -> dict[str, Any]:
    asked = ["--formats", *formats] if formats else []
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.reports",
        "--measure",
        url,
        "--kind",
        kind,
        *asked,
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"the {kind} report's process failed ({process.returncode})")
    result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    return result


def _print_table(results: list[dict[str, Any]]) -> None:
    print(
        "| report | period | wall s | vs 30 s | of which PDF s | queries s | database active s | model, writes s "
        "| peak RSS MB | vs 500 MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        s = r["spent"]
        print(
            f"| {r['kind']} | {r['period']} | {s['wall']:.1f} | {s['wall'] / TARGET_SECONDS:.2f} | "
            f"{s.get('render pdf', 0.0):.1f} | {s['queries']:.1f} | {s['database active']:.1f} | {s['model']:.1f} | "
            f"{r['peak_rss_mb']:.0f} | "
            f"{r['peak_rss_mb'] / TARGET_MB:.2f} |"
        )
    print("\n| report | format | render s | size MB |\n|---|---|---|---|")
    for r in results:
        for fmt in r["formats"]:
            s = r["spent"]
            print(f"| {r['kind']} | {fmt} | {s[f'render {fmt}']:.2f} | {s[f'bytes {fmt}'] / 1e6:.1f} |")


async def main(args: argparse.Namespace) -> None:
    """Seed a throwaway database (or take `--database`), measure each report in its own process, print the tables."""
    async with seeded_history(args) as (url, admin):
        size = await admin.fetchval("SELECT pg_size_pretty(pg_database_size($1))", url.rpartition("/")[2])
        results = []
        for kind in args.kinds:
            results.append(await _measure_in_child(url, kind, args.formats))
            print(json.dumps(results[-1]), flush=True)
    print(f"\n{url.rpartition('/')[2]}: database {size}; each report published in its own process into a folder\n")
    _print_table(results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--targets", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--alarms", type=int, default=10_000)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument(
        "--formats", nargs="+", choices=("html", "csv", "json", "pdf"), help="default: all four (no PDF of the daily)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the seeded database (its URL is printed)")
    parser.add_argument("--database", metavar="DATABASE_URL", help="measure this seeded database, seed nothing")
    parser.add_argument("--measure", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--kind", choices=KINDS, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.measure:
        asyncio.run(measure(arguments.measure, arguments.kind, arguments.formats))
    else:
        asyncio.run(main(arguments))
