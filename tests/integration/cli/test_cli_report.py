"""`certmon report`, run as a user runs it: on a PostgreSQL history (CERTMON_DATABASE_URL) or the embedded one of a
running `certmon run`, writing to a folder or to an S3 server, saying where, and refusing what it cannot build."""

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aiobotocore.session import get_session
from botocore.config import Config
from moto.server import ThreadedMotoServer

from services.reporter.adapters.history import History
from services.reporter.domain.periods import period_of, previous
from shared.db import create_pool
from shared.events import CertificateInfo, Evaluation, make_event
from tests.support.cli import CERTMON, run_certmon
from tests.support.pki import make_ca, make_leaf, write_chain
from tests.support.tls_server import server_context, tls_server
from tests.unit.reporter.reporter_factories import evaluation

CONFIG = """
owners: {shop-team: {}, web-team: {}}
targets:
  - {host: shop.example, owner: shop-team, tags: [shop]}
  - {host: www.example, owner: web-team}
reports:
  custom:
    - {name: shop, schedule: "off", filter: {tag: [shop]}, formats: [json, html]}
    - {name: weekly-shop, schedule: weekly, filter: {tag: [shop]}}
"""


async def certmon(*args: str, env: dict[str, str], timeout: float = 90) -> tuple[int, str, str]:
    """Run the certmon command with `env` over an environment free of CERTMON_ settings; (exit code, out, err)."""
    return await run_certmon(*args, env=env, timeout=timeout, inherit_settings=False)


def fresh(host: str, *, days: float, **details: object) -> Evaluation:
    """An evaluation of `host:443` made a minute ago, its certificate expiring `days` days from now."""
    now = datetime.now(UTC)
    item = evaluation(host, days=days, evaluated_at=now - timedelta(minutes=1), **details)  # type: ignore[arg-type]
    assert item.certificate is not None
    cert: CertificateInfo = item.certificate.model_copy(update={"not_after": now + timedelta(days=days)})
    return item.model_copy(update={"certificate": cert})


def written(out: str) -> list[str]:
    """The object addresses the command printed, one per indented line."""
    return [line.strip() for line in out.splitlines() if line.startswith("  ")]


def targets_in(paths: list[str]) -> list[str]:
    """The targets listed in the JSON object among `paths`."""
    report = json.loads(Path(next(p for p in paths if p.endswith(".json"))).read_text())
    return [row["target"] for row in report["certificates"]]


@pytest.fixture
async def history(database_url: str) -> str:
    """A database whose reporter history holds shop.example (critical, 3 days left, shop-team, issued by Let's
    Encrypt) and www.example (ok, 200 days, web-team); yields its URL."""
    pool = await create_pool(database_url)
    try:
        store = History(pool)
        await store.migrate()
        estate = [
            fresh("shop.example", days=3, level="critical", grade="F", owner="shop-team"),
            fresh("www.example", days=200, owner="web-team"),
        ]
        assert estate[0].certificate is not None
        lets_encrypt = estate[0].certificate.model_copy(update={"issuer": "CN=R11,O=Let's Encrypt,C=US"})
        estate[0] = estate[0].model_copy(update={"certificate": lets_encrypt})
        for item in estate:
            await store.record_evaluation(make_event("certificate.evaluated.v1", item, source="t").id, item)
    finally:
        await pool.close()
    return database_url


@pytest.fixture
def env(history: str, tmp_path: Path) -> dict[str, str]:
    """Settings for the seeded history, reports to a folder, certmon.yaml written."""
    (tmp_path / "certmon.yaml").write_text(CONFIG)
    return {
        "CERTMON_DATABASE_URL": history,
        "CERTMON_REPORTS_URL": str(tmp_path / "reports"),
        "CERTMON_CONFIG": str(tmp_path / "certmon.yaml"),
    }


async def outbox(database_url: str) -> list[dict[str, object]]:
    """The announcements queued in the reporter's outbox, as payloads."""
    pool = await create_pool(database_url)
    try:
        rows = await pool.fetch('SELECT event FROM "reporter".outbox ORDER BY seq')
    finally:
        await pool.close()
    return [row["event"]["data"] for row in rows]


async def test_daily_report_is_written_recorded_once_and_rebuilt_on_demand(env: dict[str, str], tmp_path: Path) -> None:
    """The first run writes today's report and queues its announcement; the second says it exists and writes
    nothing; --force writes it again under the same keys and queues nothing more."""
    today = period_of("daily", datetime.now(UTC)).label
    rc, out, err = await certmon("report", "daily", env=env)
    assert (rc, err) == (0, "")
    assert f"published daily report {today}" in out
    paths = written(out)
    assert paths and all(p.startswith(f"{tmp_path / 'reports'}/daily/{today}/") for p in paths)
    assert all(map(os.path.isfile, paths))
    rc, again, _ = await certmon("report", "daily", env=env)
    assert rc == 0
    assert f"already published daily report {today}" in again
    assert written(again) == paths
    rc, forced, _ = await certmon("report", "daily", "--force", env=env)
    assert rc == 0
    assert "rebuilt daily report" in forced and "not announced again" in forced
    assert written(forced) == paths
    queued = await outbox(env["CERTMON_DATABASE_URL"])
    assert [(q["kind"], q["period"]) for q in queued] == [("daily", today)]


async def test_weekly_report_of_a_given_week_in_the_formats_asked(env: dict[str, str], tmp_path: Path) -> None:
    """`--period 2026-W47 --format json` writes that week's report as JSON only."""
    rc, out, _ = await certmon("report", "weekly", "--period", "2026-W47", "--format", "json", env=env)
    assert rc == 0, out
    paths = written(out)
    assert paths and all(p.startswith(f"{tmp_path / 'reports'}/weekly/2026-W47/") for p in paths)
    assert [Path(p).suffix for p in paths] == [".json"]


async def test_a_named_custom_report(env: dict[str, str], tmp_path: Path) -> None:
    """`report custom shop` holds the targets tagged shop in certmon.yaml, in its formats, under custom/shop/."""
    rc, out, _ = await certmon("report", "custom", "shop", env=env)
    assert rc == 0, out
    today = period_of("daily", datetime.now(UTC)).label
    paths = written(out)
    assert sorted(Path(p).suffix for p in paths) == [".html", ".json"]
    assert all(p.startswith(f"{tmp_path / 'reports'}/custom/shop/{today}/") for p in paths)
    assert targets_in(paths) == ["shop.example:443"]


async def test_an_adhoc_custom_report_from_filter_options(env: dict[str, str]) -> None:
    """Owner, level, grade, issuer and days left given on the command line select shop.example alone; the report
    is named after its filter and announced with that name."""
    rc, out, _ = await certmon(
        "report",
        "custom",
        "--owner",
        "shop-team",
        "--owner",
        "web-team",
        "--level",
        "critical",
        "--grade",
        "F",
        "--issuer",
        "let's encrypt",
        "--days-left-max",
        "30",
        env=env,
    )
    assert rc == 0, out
    paths = written(out)
    assert all("/custom/adhoc-" in p for p in paths)
    assert targets_in(paths) == ["shop.example:443"]
    [queued] = await outbox(env["CERTMON_DATABASE_URL"])
    assert queued["kind"] == "custom" and str(queued["name"]).startswith("adhoc-")


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["weekly", "--period", "2026-12-05"], "a weekly report covers an ISO week"),
        (["monthly", "--period", "2026-13"], "is no day, week or month of the calendar"),
        (["weekly", "--period", "2999-W01"], "has not begun"),
        (["custom", "nope"], "no custom report named 'nope'"),
        (["custom", "shop", "--owner", "x"], "NAME or filter options, not both"),
        (["custom"], "name a custom report"),
        (["custom", "--level", "dreadful"], "--level"),
        (["custom", "--days-left-min", "30", "--days-left-max", "7"], "days_left.min is above days_left.max"),
        (["daily", "--format", "docx"], "--format takes html, csv, json or pdf"),
    ],
)
async def test_what_cannot_be_built_is_refused_with_exit_1(env: dict[str, str], args: list[str], reason: str) -> None:
    """Bad periods, names, filter values and formats exit 1 with the reason, and nothing is recorded."""
    rc, _, err = await certmon("report", *args, env=env)
    assert rc == 1
    assert reason in " ".join(err.split()), err
    assert "Traceback" not in err
    assert await outbox(env["CERTMON_DATABASE_URL"]) == []


async def test_a_period_not_over_is_refused_for_a_whole_period_report(env: dict[str, str]) -> None:
    """This week's weekly report, or this week's scheduled custom one, would stand in for the whole week: refused."""
    this_week = period_of("weekly", datetime.now(UTC)).label
    for args in (["weekly"], ["custom", "weekly-shop"]):
        rc, _, err = await certmon("report", *args, "--period", this_week, env=env)
        assert rc == 1
        assert "is not over until" in err
    rc, out, _ = await certmon("report", "custom", "weekly-shop", env=env)
    last_week = previous(period_of("weekly", datetime.now(UTC))).label
    assert rc == 0
    assert f"published custom report weekly-shop {last_week}" in out


async def test_a_broken_config_or_no_database_exits_1(env: dict[str, str], tmp_path: Path) -> None:
    """A certmon.yaml with an error names its path; a database that does not answer is said so."""
    (tmp_path / "bad.yaml").write_text("reports: {custom: [{name: Bad Name}]}\n")
    rc, _, err = await certmon("report", "daily", "--config", str(tmp_path / "bad.yaml"), env=env)
    assert rc == 1
    assert "reports.custom[0].name" in err
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = {**env, "CERTMON_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/none"}
    rc, _, err = await certmon("report", "daily", env=down)
    assert rc == 1
    assert "cannot reach the history" in err


@pytest.fixture
def s3() -> AsyncIterator[str]:
    """A moto S3 server on 127.0.0.1; yields its endpoint."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
}


async def test_report_to_an_s3_bucket(env: dict[str, str], s3: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With `s3://bucket/prefix` the objects land in the bucket under the prefix and the command prints their
    s3:// addresses."""
    for name, value in AWS.items():
        monkeypatch.setenv(name, value)
    config = Config(signature_version="s3v4", s3={"addressing_style": "path"})
    async with get_session().create_client("s3", endpoint_url=s3, config=config) as client:
        await client.create_bucket(Bucket="reports")
    to_s3 = {**env, **AWS, "CERTMON_REPORTS_URL": "s3://reports/certmon", "CERTMON_S3_ENDPOINT_URL": s3}
    rc, out, err = await certmon("report", "monthly", "--period", "2026-10", env=to_s3)
    assert rc == 0, err
    paths = written(out)
    assert paths and all(p.startswith("s3://reports/certmon/monthly/2026-10/") for p in paths)
    async with get_session().create_client("s3", endpoint_url=s3, config=config) as client:
        listing = await client.list_objects_v2(Bucket="reports", Prefix="certmon/monthly/2026-10/")
    assert sorted(f"s3://reports/{item['Key']}" for item in listing["Contents"]) == sorted(paths)


async def test_report_on_the_embedded_database_of_a_running_certmon_run(tmp_path: Path) -> None:
    """Beside a running `certmon run` (no CERTMON_DATABASE_URL), `certmon report` in the same data directory reads
    the history that run keeps, records the report where the running dashboard lists it, and leaves run running."""
    ca = make_ca("report Root")
    cert, key = write_chain(
        tmp_path, "edge", make_leaf(ca, ["127.0.0.1"], not_after=datetime.now(UTC) + timedelta(days=20))
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        http_port = sock.getsockname()[1]
    async with tls_server(server_context(cert, key)) as tls_port:
        (tmp_path / "certmon.yaml").write_text(
            f"owners: {{edge-team: {{}}}}\ntargets:\n  - {{host: 127.0.0.1, port: {tls_port}, owner: edge-team, "
            "tags: [edge]}\n"
        )
        env = {
            "CERTMON_DATA_DIR": str(tmp_path / "data"),
            "CERTMON_REPORTS_URL": str(tmp_path / "reports"),
            "CERTMON_CONFIG": str(tmp_path / "certmon.yaml"),
            "CERTMON_HTTP_PORT": str(http_port),
        }
        base = {k: v for k, v in os.environ.items() if not k.startswith("CERTMON_")}
        run = await asyncio.create_subprocess_exec(
            *CERTMON,
            "run",
            "--exit-after",
            "90",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**base, "CERTMON_LOG_LEVEL": "warning", **env},
        )
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as client:
                async with asyncio.timeout(60):
                    while True:
                        await asyncio.sleep(0.3)
                        try:
                            items = (await client.get("/api/v1/certificates")).json()["items"]
                        except httpx.TransportError:
                            continue
                        if items:
                            break
                rc, out, err = await certmon("report", "custom", "--tag", "edge", env=env)
                assert rc == 0, err
                assert targets_in(written(out)) == [f"127.0.0.1:{tls_port}"]
                listed = (await client.get("/api/v1/reports")).json()
                assert any(str(item.get("name", "")).startswith("adhoc-") for item in listed["items"]), listed
                assert run.returncode is None
        finally:
            run.terminate()
            async with asyncio.timeout(30):
                await run.communicate()
    assert run.returncode == 0
    rc, out, err = await certmon("report", "daily", env=env)  # run is gone: the command starts the database itself
    assert rc == 0, err
    assert "published daily report" in out
