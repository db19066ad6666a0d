"""The dashboard's list queries on PostgreSQL with enough rows for the planner to care (20,000 targets and
alarms): each filtered page reads an index, never the whole table."""

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.reporter.adapters.dashboard_sql import alarm_rows_query, certificate_rows_query
from services.reporter.adapters.history import History
from services.reporter.domain.estate import AlarmKey, RowKey
from services.reporter.ports import AlarmFilter, CertificateFilter, CertificateSort
from tests.unit.reporter.reporter_factories import NOW

ROWS = 20_000
_SEED = """
INSERT INTO reporter.evaluations (event_id, target_key, fingerprint, evaluated_at, level, grade, days_remaining,
                                  evaluation)
SELECT 'e' || n, 'host' || n || '.example:443', md5(n::text) || md5((n + 1)::text), $1,
       (ARRAY['critical', 'warning', 'info', 'ok'])[1 + n % 4], (ARRAY['A+', 'A', 'B', 'F'])[1 + n % 4], n % 400, '{}'
FROM generate_series(1, $2) AS n
;
INSERT INTO reporter.latest (target_key, event_id, evaluated_at, level, grade, owner, server, fingerprint, subject,
                             issuer, not_after, reachable, search)
SELECT target_key, event_id, evaluated_at, level, grade, 'owner-' || substr(event_id, 2)::int % 200,
       'server-' || substr(event_id, 2)::int % 500, fingerprint, 'CN=' || target_key,
       'CN=Issuing CA ' || substr(event_id, 2)::int % 20, evaluated_at + (days_remaining || ' days')::interval, true,
       target_key || ' ' || fingerprint || ' CN=' || target_key
FROM reporter.evaluations
;
INSERT INTO reporter.alarms (alarm_id, event_id, state, level, trigger, target_key, fingerprint, owners, raised_at,
                             updated_at)
SELECT 'alarm-' || n, 'ae' || n, (ARRAY['open', 'acknowledged', 'resolved', 'resolved'])[1 + n % 4],
       (ARRAY['critical', 'warning', 'info'])[1 + n % 3], 'expiry', 'host' || n || '.example:443', md5(n::text),
       ARRAY['owner-' || n % 200], $1::timestamptz - (n || ' minutes')::interval,
       $1::timestamptz - (n || ' minutes')::interval
FROM generate_series(1, $2) AS n;
"""


@pytest.fixture
async def pool(pg_pool: asyncpg.Pool) -> asyncpg.Pool:
    """The reporter's schema with ROWS targets and ROWS alarms, analysed."""
    await History(pg_pool).migrate()
    async with pg_pool.acquire() as conn:
        evaluations, latest, alarms = _SEED.split("\n;\n")
        await conn.execute(evaluations, NOW, ROWS)
        await conn.execute(latest)
        await conn.execute(alarms, NOW, ROWS)
        await conn.execute("ANALYZE reporter.latest; ANALYZE reporter.alarms")
    return pg_pool


def scans(plan: dict[str, Any]) -> list[tuple[str, str | None]]:
    """Every node of a JSON plan as (node type, relation), depth first."""
    found = [(plan["Node Type"], plan.get("Relation Name"))]
    for child in plan.get("Plans", []):
        found += scans(child)
    return found


async def plan_of(pool: asyncpg.Pool, sql: str, values: list[Any]) -> list[tuple[str, str | None]]:
    """The nodes of the plan PostgreSQL chooses for `sql` (the pool decodes the JSON plan)."""
    explained = await pool.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *values)
    return scans(explained[0]["Plan"])


CERTIFICATE_PAGES: list[tuple[CertificateFilter, CertificateSort, RowKey | None]] = [
    (CertificateFilter(), "urgency", None),
    (CertificateFilter(), "expiry", RowKey("ok", NOW + timedelta(days=100), "host5.example:443")),
    (CertificateFilter(), "target", RowKey("ok", None, "host5000.example:443")),
    (CertificateFilter(owner="owner-7"), "urgency", None),
    (CertificateFilter(server="server-42"), "expiry", None),
    (CertificateFilter(issuer="CN=Issuing CA 3"), "urgency", RowKey("warning", NOW, "host1.example:443")),
    (CertificateFilter(level="critical"), "urgency", None),
    (CertificateFilter(grade="F"), "target", None),
    (CertificateFilter(fingerprint="ab" * 32), "target", None),
    (CertificateFilter(expires_from=NOW, expires_before=NOW + timedelta(days=7)), "expiry", None),
    (CertificateFilter(owner="owner-7", level="warning", expires_before=NOW + timedelta(days=90)), "urgency", None),
]


async def test_every_page_of_certificates_reads_an_index(pool: asyncpg.Pool) -> None:
    """Whatever the filter and the order, a page of 51 targets never scans the whole `latest` table."""
    for where, sort, after in CERTIFICATE_PAGES:
        sql, values = certificate_rows_query(where, sort=sort, after=after, limit=51)
        nodes = await plan_of(pool, sql, values)
        assert ("Seq Scan", "latest") not in nodes, (where, sort, after, nodes)
        assert any(relation == "latest" for _, relation in nodes)


async def test_a_text_search_can_read_the_trigram_index(pool: asyncpg.Pool) -> None:
    """pg_trgm (which this server has) indexes the searched text, so a substring search need not read every row;
    on 20,000 rows the planner may still prefer to, so the index is asked for here."""
    sql, values = certificate_rows_query(CertificateFilter(q="host1234"), sort="urgency", after=None, limit=51)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        explained = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *values)
    nodes = scans(explained[0]["Plan"])
    assert ("Bitmap Index Scan", None) in nodes and ("Seq Scan", "latest") not in nodes, nodes


ALARM_PAGES: list[tuple[AlarmFilter, AlarmKey | None]] = [
    (AlarmFilter(), None),
    (AlarmFilter(), AlarmKey("warning", NOW - timedelta(days=3), "alarm-4000")),
    (AlarmFilter(states=("open",)), None),
    (AlarmFilter(owner="owner-9"), None),
    (AlarmFilter(level="critical", active_from=NOW - timedelta(days=1)), None),
]


async def test_every_page_of_alarms_reads_an_index(pool: asyncpg.Pool) -> None:
    """The alarm history's pages, latest change first, never scan the whole `alarms` table."""
    for where, after in ALARM_PAGES:
        sql, values = alarm_rows_query(where, order="recent", after=after, limit=51)
        nodes = await plan_of(pool, sql, values)
        assert ("Seq Scan", "alarms") not in nodes, (where, after, nodes)


async def test_the_seeded_rows_are_what_the_plans_were_asked_about(pool: asyncpg.Pool) -> None:
    """The seed holds ROWS targets with their sort keys computed, so the plans above ran on a full table."""
    history = History(pool)
    assert await history.count_certificates() == ROWS
    first = await history.certificate_rows(limit=3)
    assert [row.level for row in first] == ["critical"] * 3
    assert first[0].not_after is not None and first[0].not_after >= datetime(2026, 11, 27, tzinfo=UTC)
