"""The query plans of the reporter's main reads over a large history, on a throwaway database of the local PostgreSQL.

    .venv/bin/python -m benchmarks.reporter_plans [--targets 100000] [--days 7] [--alarms 10000] [--keep]
    .venv/bin/python -m benchmarks.reporter_plans --database URL      # a database seeded before (`--keep`)

Seeds the history `benchmarks.dashboard` describes (its evaluations and alarms: the older days by COPY, the newest
day, the alarms and one email per alarm event through `History`). Then runs the reporter's reads (the dashboard's
overview, the certificates list, a certificate's page, the timeline, `GET /api/v1/alarms`, the daily report's
reads) through the service layer on one connection, logs the statements they send (asyncpg's query logger), runs
`EXPLAIN (ANALYZE, BUFFERS)` on each and prints its top plan nodes and timing, flagging a sequential scan of a big
table (`evaluations`, `latest`, `alarms`, `alarm_events`, `notifications`) where a point or a page should read an
index. The output is what `benchmarks/results/reporter_plans.md` keeps. Not a test: pytest does
not collect it (`tests/integration/reporter/test_dashboard_query_plans.py` checks the pages' plans at 20,000 rows).
"""

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg

from benchmarks.dashboard import NOW, seeded_history
from services.reporter.adapters import report_queries
from services.reporter.adapters.history import History
from services.reporter.adapters.http import ALARMS_PAGE
from services.reporter.ports import AlarmFilter, CertificateFilter
from services.reporter.service_layer import dashboard
from services.reporter.service_layer.building import status_alarms
from services.reporter.service_layer.queries import certificate_detail
from shared.db import create_pool

BIG_TABLES = ("evaluations", "latest", "alarms", "alarm_events", "notifications")
_S = '"reporter"'


@dataclass(frozen=True)
class Scenario:
    """One page or read of the reporter, and whether it reads a bounded part of the estate (a point or a page:
    no sequential scan of a big table) or all of it (a sequential scan of `latest` is expected, of the history
    not)."""

    name: str
    read: Callable[[History], Awaitable[object]]
    bounded: bool = True
    #: Statements the read sends through a cursor, which asyncpg's query logger does not see.
    cursors: tuple[str, ...] = ()


def scenarios() -> list[Scenario]:
    """The reporter's main reads over the seeded history, with a certificate, owner and text that exist there."""
    fingerprint = f"{4242:064x}"
    where_owner = CertificateFilter(owner="team-7")

    async def second_certificates_page(history: History) -> object:
        first = await dashboard.certificate_list(history, CertificateFilter(), sort="urgency", after=None)
        return await dashboard.certificate_list(history, CertificateFilter(), sort="urgency", after=first.next_after)

    async def second_alarms_page(history: History) -> object:
        first = await dashboard.alarm_page(history, AlarmFilter(), after=None, limit=ALARMS_PAGE)
        return await dashboard.alarm_page(history, AlarmFilter(), after=first.next_after, limit=ALARMS_PAGE)

    async def daily_report_reads(history: History) -> object:
        return await history.statuses(), await status_alarms(history, NOW)

    async def overview_counts(history: History) -> object:
        return await history.estate_counts(NOW)

    async def overview_lists(history: History) -> object:
        # `dashboard.overview`'s two lists, without its counts (the scenario before).
        return (
            await history.certificate_rows(
                CertificateFilter(expires_from=NOW), sort="expiry", limit=dashboard.NEXT_EXPIRATIONS
            ),
            await history.alarm_rows(
                AlarmFilter(states=("open", "acknowledged")), order="severity", limit=dashboard.OPEN_ALARMS_SHOWN
            ),
        )

    return [
        Scenario("dashboard overview: the counts", overview_counts, bounded=False),
        Scenario("dashboard overview: next expirations and open alarms", overview_lists),
        Scenario(
            "certificates list (first page)",
            lambda h: dashboard.certificate_list(h, CertificateFilter(), sort="urgency", after=None),
        ),
        Scenario("certificates list (page 2, by cursor)", second_certificates_page),
        Scenario(
            "certificates list by owner",
            lambda h: dashboard.certificate_list(h, where_owner, sort="urgency", after=None),
        ),
        Scenario(
            "certificates list by text (q)",
            lambda h: dashboard.certificate_list(h, CertificateFilter(q="h004242"), sort="urgency", after=None),
        ),
        Scenario("certificate page", lambda h: dashboard.certificate_page(h, fingerprint)),
        Scenario("API certificate", lambda h: certificate_detail(h, fingerprint)),
        Scenario("timeline", lambda h: dashboard.timeline(h, NOW), bounded=False),
        Scenario(
            "API alarms (first page)", lambda h: dashboard.alarm_page(h, AlarmFilter(), after=None, limit=ALARMS_PAGE)
        ),
        Scenario("API alarms (page 2, by cursor)", second_alarms_page),
        Scenario(
            "API alarms ?state=acknowledged",
            lambda h: dashboard.alarm_page(h, AlarmFilter(states=("acknowledged",)), after=None, limit=ALARMS_PAGE),
        ),
        Scenario("daily report", daily_report_reads, bounded=False, cursors=(report_queries.STATUSES,)),
    ]


def _nodes(plan: dict[str, Any], depth: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    yield depth, plan
    for child in plan.get("Plans", []):
        yield from _nodes(child, depth + 1)


def _label(node: dict[str, Any]) -> str:
    parts = [node["Node Type"]]
    if "Index Name" in node:
        parts.append(f"using {node['Index Name']}")
    if "Relation Name" in node:
        parts.append(f"on {node['Relation Name']}")
    rows = node.get("Actual Rows", 0) * node.get("Actual Loops", 1)
    return f"{' '.join(parts)} (rows {rows:,}, {node.get('Actual Total Time', 0.0):.1f} ms)"


async def _explain(conn: asyncpg.Connection, query: str, args: tuple[Any, ...]) -> dict[str, Any]:
    text = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {query}", *args)
    found: dict[str, Any] = (json.loads(text) if isinstance(text, str) else text)[0]
    return found


def _statement(query: str) -> str:
    one_line = " ".join(query.split())
    return one_line if len(one_line) <= 150 else one_line[:147] + "..."


async def explain_all(url: str) -> None:
    """Run each scenario once on one connection, log its statements, EXPLAIN (ANALYZE, BUFFERS) each, print."""
    pool = await create_pool(url, min_size=1, max_size=1)
    history = History(pool)
    await history.migrate()  # a database seeded before the newest migration gets its indexes
    logged: list[tuple[str, tuple[Any, ...]]] = []
    async with pool.acquire() as conn:
        conn.add_query_logger(lambda q: logged.append((q.query, tuple(q.args))))
    flagged = 0
    print(
        f"# {url.rpartition('/')[2]}: {await pool.fetchval('SELECT count(*) FROM reporter.latest'):,} targets, "
        f"{await pool.fetchval('SELECT count(*) FROM reporter.evaluations'):,} runs, "
        f"{await pool.fetchval('SELECT count(*) FROM reporter.alarms'):,} alarms\n"
    )
    for scenario in scenarios():
        logged.clear()
        started = time.perf_counter()
        await scenario.read(history)
        wall = (time.perf_counter() - started) * 1000
        statements = list(logged) + [(query, ()) for query in scenario.cursors]
        print(
            f"## {scenario.name} ({'a point or a page' if scenario.bounded else 'the whole estate'}; "
            f"{wall:.0f} ms in all)\n"
        )
        seen: set[str] = set()
        for query, args in statements:
            # Reads only; a statement of several commands (a migration's) cannot be explained as one.
            if query in seen or not query.lstrip().upper().startswith(("SELECT", "WITH")) or ";" in query:
                continue
            seen.add(query)
            async with pool.acquire() as conn:
                result = await _explain(conn, query, args)
            plan = result["Plan"]
            seq = sorted({str(n["Relation Name"]) for _, n in _nodes(plan) if n["Node Type"] == "Seq Scan"})
            seq = [t for t in seq if t in BIG_TABLES]
            # A read of the whole estate reads all of `latest` and a large share of the alarms; never the history.
            bad = [t for t in seq if scenario.bounded or t == "evaluations"]
            flagged += len(bad)
            hit = plan.get("Shared Hit Blocks", 0)
            read = plan.get("Shared Read Blocks", 0)
            print(f"- `{_statement(query)}`")
            print(
                f"  - execution {result['Execution Time']:.1f} ms, planning {result['Planning Time']:.1f} ms; "
                f"shared buffers hit {hit:,}, read {read:,}"
                + (f"; **sequential scan of {', '.join(bad)}**" if bad else "")
            )
            for depth, node in list(_nodes(plan))[:6]:
                print(f"  {'  ' * depth}  - {_label(node)}")
        print()
    print(f"sequential scans of a big table where an index should serve: {flagged}")
    await pool.close()


async def main(args: argparse.Namespace) -> None:
    """Seed a throwaway database (or take `--database`), print the plans."""
    async with seeded_history(args, deliveries=True) as (url, _):
        if not args.seed_only:
            await explain_all(url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--targets", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--alarms", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true", help="keep the seeded database (its URL is printed)")
    parser.add_argument("--seed-only", action="store_true", help="seed (with --keep) and print no plan")
    parser.add_argument("--database", metavar="DATABASE_URL", help="explain over this seeded database, seed nothing")
    asyncio.run(main(parser.parse_args()))
