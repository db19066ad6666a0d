"""`certmon check`, `certmon config validate` and `certmon run --demo`, run as a user runs them: the console script."""

import asyncio
import datetime as dt
import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import httpx
import pytest

from tests.support.cli import CERTMON
from tests.support.cli import run_certmon as certmon
from tests.support.pki import make_ca, make_leaf, write_chain
from tests.support.tls_server import server_context, tls_server

DAY = dt.timedelta(days=1)


@pytest.fixture
async def endpoints(tmp_path: Path) -> AsyncIterator[tuple[Path, dict[str, int]]]:
    """TLS servers: healthy (trusted via the root file), expiring in 20 days, expiring in 3 days, self-signed."""
    now = dt.datetime.now(dt.UTC)
    root = make_ca("cli Root")
    issuing = make_ca("cli Issuing", issuer=root)
    leaves = {
        "healthy": (make_leaf(issuing, ["127.0.0.1"], not_after=now + 200 * DAY), (issuing,)),
        "warning": (make_leaf(issuing, ["127.0.0.1"], not_after=now + 20 * DAY), (issuing,)),
        "critical": (make_leaf(issuing, ["127.0.0.1"], not_after=now + 3 * DAY), (issuing,)),
        "self-signed": (make_leaf(None, ["127.0.0.1"], not_after=now + 200 * DAY), ()),
    }
    (tmp_path / "root.pem").write_bytes(root.pem)
    ports: dict[str, int] = {}
    servers = []
    for name, (leaf, chain) in leaves.items():
        cert, key = write_chain(tmp_path, name, leaf, *chain)
        server = tls_server(server_context(cert, key))
        ports[name] = await server.__aenter__()
        servers.append(server)
    try:
        yield tmp_path / "root.pem", ports
    finally:
        for server in servers:
            await server.__aexit__(None, None, None)


@pytest.mark.parametrize(("case", "code"), [("healthy", 0), ("warning", 1), ("critical", 2), ("self-signed", 2)])
async def test_check_exit_code_follows_nagios(endpoints: tuple[Path, dict[str, int]], case: str, code: int) -> None:
    """Exit 0 ok, 1 warning, 2 critical, whatever the cause of the level."""
    root, ports = endpoints
    rc, out, _ = await certmon("check", f"127.0.0.1:{ports[case]}", "--ca-file", str(root))
    assert rc == code
    assert f"127.0.0.1:{ports[case]}" in out


async def test_check_json_is_the_evaluation_object(endpoints: tuple[Path, dict[str, int]]) -> None:
    """One target prints one evaluation object with the contract's fields."""
    root, ports = endpoints
    rc, out, _ = await certmon("check", f"127.0.0.1:{ports['warning']}", "--ca-file", str(root), "--json")
    doc = json.loads(out)
    assert rc == 1
    assert doc["target"]["port"] == ports["warning"]
    assert doc["alarm"] == {"level": "warning", "triggers": ["expiry"]}
    assert doc["expiry"]["renewal_window"] == "urgent" and 19 < doc["expiry"]["days_remaining"] < 20
    assert doc["chain"]["trusted"] is True and len(doc["chain"]["verified_path"]) == 3
    assert [f["code"] for f in doc["findings"]] == ["expiry.within_30_days"]


async def test_several_targets_give_an_array_and_the_worst_exit_code(endpoints: tuple[Path, dict[str, int]]) -> None:
    """Several targets print a JSON array in argument order; the exit code is the worst (critical)."""
    root, ports = endpoints
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    rc, out, _ = await certmon(
        "check",
        f"127.0.0.1:{ports['healthy']}",
        f"127.0.0.1:{ports['critical']}",
        f"127.0.0.1:{dead_port}",
        "--ca-file",
        str(root),
        "--json",
    )
    docs = json.loads(out)
    assert rc == 2
    assert [d["alarm"]["level"] for d in docs] == ["ok", "critical", "warning"]
    assert docs[2]["reachable"] is False and docs[2]["error"]["kind"] == "refused"


async def test_unreachable_alone_is_unknown() -> None:
    """A target that cannot be observed at all exits 3 (unknown)."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    rc, out, _ = await certmon("check", f"127.0.0.1:{port}")
    assert rc == 3
    assert "refused" in out


async def test_check_file_and_explain(endpoints: tuple[Path, dict[str, int]]) -> None:
    """A certificate file is checked like an endpoint; --explain lists every finding in words."""
    root, _ = endpoints
    rc, out, _ = await certmon(
        "check", "--file", str(root.parent / "critical.pem"), "--ca-file", str(root), "--explain"
    )
    assert rc == 2
    assert "expiry.within_7_days" in out and "critical threshold 7 days" in out.replace("\n", " ")


async def test_bad_arguments_are_unknown_not_critical() -> None:
    """A malformed target exits 3 with a message, never 2."""
    rc, _, err = await certmon("check", "host:notaport")
    assert rc == 3
    assert "port" in err


async def test_config_validate_points_at_each_error(tmp_path: Path) -> None:
    """`certmon config validate` names the path of every problem and exits 1; a good file exits 0."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("defaults: {owner: ghost}\ntargets:\n  - {host: a.example, port: 99999}\n")
    rc, out, _ = await certmon("config", "validate", str(bad))
    assert rc == 1
    assert "defaults.owner" in out and "targets[0].port" in out
    template = tmp_path / "template.yaml"
    template.write_text('channels: {snmp: {noc: {host: h, community_env: C, message_template: "{% if %}"}}}\n')
    rc, out, _ = await certmon("config", "validate", str(template))
    assert rc == 1
    assert "channels.snmp.noc.message_template" in out and "template line 1" in out
    good = tmp_path / "good.yaml"
    good.write_text("owners: {ops: {}}\ndefaults: {owner: ops}\ntargets:\n  - {host: a.example}\n")
    rc, out, _ = await certmon("config", "validate", str(good))
    assert rc == 0 and "valid" in out


async def test_run_refuses_a_broken_config(tmp_path: Path) -> None:
    """`certmon run` with a broken certmon.yaml stops at once with the path of the problem."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets:\n  - {host: a.example, profile: turbo}\n")
    rc, _, err = await certmon("run", "--config", str(bad))
    assert rc == 1
    assert "targets[0].profile" in err


async def test_demo_shows_alarms_notifications_and_dashboard(tmp_path: Path) -> None:
    """`certmon run --demo` (the README's first command) raises the demo's alarms, prints them, serves the dashboard."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        *CERTMON,
        "run",
        "--demo",
        "--exit-after",
        "40",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "CERTMON_HTTP_PORT": str(port), "CERTMON_LOG_LEVEL": "warning"},
    )
    levels: dict[str, str] = {}
    page = ""
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client, asyncio.timeout(30):
            # The expired certificate reaches the overview through its open alarm, which the alarmer raises
            # after the reporter has stored the evaluation: wait for both.
            while len(levels) < 4 or not all(key in page for key in levels):
                await asyncio.sleep(0.3)
                try:
                    response = await client.get("/api/v1/certificates")
                    page = (await client.get("/")).text
                except httpx.TransportError:
                    continue
                levels = {i["target_key"]: i["alarm"]["level"] for i in response.json()["items"]}
    finally:
        process.terminate()
        out, _ = await process.communicate()
    assert sorted(levels.values()) == ["critical", "critical", "critical", "ok"]
    assert all(key in page for key in levels)
    printed = out.decode()
    assert printed.count("[certmon] CRITICAL raised") >= 3
    assert process.returncode == 0


async def test_one_service_needs_broker_and_database() -> None:
    """`certmon scanner` alone refuses to start on embedded defaults and says what to set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTMON_")}
    process = await asyncio.create_subprocess_exec(
        *CERTMON, "scanner", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    async with asyncio.timeout(30):
        _, err = await process.communicate()
    assert process.returncode == 1
    assert "CERTMON_DATABASE_URL" in err.decode()


async def test_one_service_runs_on_rabbitmq_and_stops_on_sigterm(amqp_url: str, database_url: str) -> None:
    """`certmon alarmer` with a broker and database migrates, consumes, and exits 0 on SIGTERM."""
    process = await asyncio.create_subprocess_exec(
        *CERTMON,
        "alarmer",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={
            **os.environ,
            "CERTMON_AMQP_URL": amqp_url,
            "CERTMON_DATABASE_URL": database_url,
            "CERTMON_LOG_FORMAT": "json",
        },
    )
    assert process.stderr is not None
    try:
        async with asyncio.timeout(30):
            while b"service_started" not in (line := await process.stderr.readline()):
                assert line, "the alarmer exited before starting"
    finally:
        process.terminate()
        async with asyncio.timeout(30):
            rest = await process.stderr.read()
            await process.wait()
    assert process.returncode == 0
    assert b"service_stopped" in rest
    assert b"guest:guest" not in rest  # the broker password never reaches a log line
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete("certmon.alarmer.evaluations")  # leave the shared broker as it was


async def test_check_a_directory_of_certificate_files(endpoints: tuple[Path, dict[str, int]]) -> None:
    """`--file DIR` checks every certificate file in it, one evaluation each, and exits with the worst level."""
    root, _ = endpoints
    directory = root.parent / "certs"
    directory.mkdir()
    for name in ("healthy", "warning"):
        (directory / f"{name}.pem").write_bytes((root.parent / f"{name}.pem").read_bytes())
    (directory / "notes.txt").write_text("not a certificate")
    rc, out, _ = await certmon("check", "--file", str(directory), "--ca-file", str(root), "--json")
    docs = json.loads(out)
    assert rc == 1
    assert [Path(d["target"]["file"]).name for d in docs] == ["healthy.pem", "warning.pem"]
    assert [d["alarm"]["level"] for d in docs] == ["ok", "warning"]


async def test_check_refuses_a_denied_address(tmp_path: Path) -> None:
    """The scanning policy applies to `certmon check` too: a denied address is never connected to."""
    config = tmp_path / "certmon.yaml"
    config.write_text("scanning: {deny: [127.0.0.0/8]}\n")
    rc, out, _ = await certmon("check", "127.0.0.1:443", "--config", str(config), "--json")
    doc = json.loads(out)
    assert rc == 3
    assert doc["error"]["kind"] == "policy"


async def test_check_full_enumerates_versions_and_suites(endpoints: tuple[Path, dict[str, int]]) -> None:
    """`--full` reports the protocol versions and cipher suites the server accepts, graded from them."""
    root, ports = endpoints
    rc, out, _ = await certmon("check", f"127.0.0.1:{ports['healthy']}", "--ca-file", str(root), "--full", "--json")
    doc = json.loads(out)
    assert rc == 0
    assert doc["tls"]["versions"] == ["TLSv1.2", "TLSv1.3"]
    assert "TLS_AES_256_GCM_SHA384" in doc["tls"]["cipher_suites"]["TLSv1.3"]
    assert all(name.startswith("TLS_") for suites in doc["tls"]["cipher_suites"].values() for name in suites)
    assert doc["tls"]["forward_secrecy"] is True
    assert doc["security"]["grade"] in ("A", "A+")
    assert "expiry profile" not in doc["security"]["basis"]


async def test_missing_ca_file_is_a_clear_unknown(tmp_path: Path) -> None:
    """A --ca-file that does not exist is reported in one line and exits 3, never as a traceback."""
    rc, _, err = await certmon("check", "--file", str(tmp_path / "x.pem"), "--ca-file", str(tmp_path / "none.pem"))
    assert rc == 3
    assert "none.pem" in err and "Traceback" not in err


async def test_run_refuses_a_ca_file_without_certificates(tmp_path: Path) -> None:
    """`certmon run` with a trust file that holds no certificate stops at once and names the file."""
    bad_ca = tmp_path / "not-a-ca.pem"
    bad_ca.write_text("hello\n")
    config = tmp_path / "certmon.yaml"
    config.write_text(f"trust: {{ca_files: [{bad_ca}]}}\n")
    rc, _, err = await certmon(
        "run", "--config", str(config), "--exit-after", "5", env={"CERTMON_DATA_DIR": str(tmp_path / "data")}
    )
    assert rc == 1
    assert "not-a-ca.pem" in err and "Traceback" not in err


@pytest.fixture
async def completion_endpoints(tmp_path: Path) -> AsyncIterator[tuple[Path, int, int]]:
    """Two TLS servers under one intermediate: one sends it, the other sends its leaf alone; and the root file."""
    now = dt.datetime.now(dt.UTC)
    root = make_ca("completion Root")
    issuing = make_ca("completion Issuing", issuer=root)
    (tmp_path / "root.pem").write_bytes(root.pem)
    whole = write_chain(tmp_path, "whole", make_leaf(issuing, ["127.0.0.1"], not_after=now + 90 * DAY), issuing)
    alone = write_chain(tmp_path, "alone", make_leaf(issuing, ["127.0.0.1"], not_after=now + 90 * DAY))
    async with tls_server(server_context(*whole)) as whole_port, tls_server(server_context(*alone)) as alone_port:
        yield tmp_path / "root.pem", whole_port, alone_port


async def test_one_run_completes_a_chain_from_an_intermediate_an_earlier_target_sent(
    completion_endpoints: tuple[Path, int, int],
) -> None:
    """In one run, a leaf-only chain checked after an endpoint that sends its intermediate is completed from the
    cache (trusted, still incomplete, B); checked alone or first, it is not (untrusted, F)."""
    root, whole_port, alone_port = completion_endpoints
    whole, alone = f"127.0.0.1:{whole_port}", f"127.0.0.1:{alone_port}"
    _, after_out, _ = await certmon("check", whole, alone, "--ca-file", str(root), "--json")
    _, first_out, _ = await certmon("check", alone, whole, "--ca-file", str(root), "--json")
    _, alone_out, _ = await certmon("check", alone, "--ca-file", str(root), "--json")
    after, first, checked_alone = json.loads(after_out)[1], json.loads(first_out)[0], json.loads(alone_out)
    assert json.loads(after_out)[0]["chain"]["completed_from"] is None  # sent whole: nothing to complete
    chain = after["chain"]
    assert (chain["trusted"], chain["complete"], chain["completed_from"]) == (True, False, "cache")
    assert after["security"]["grade"] == "B"
    (message,) = [f["message"] for f in after["findings"] if f["code"] == "chain.incomplete"]
    assert "found in the known-intermediates cache" in message and "reject it" in message
    for unaided in (first, checked_alone):
        assert unaided["target"]["port"] == alone_port
        assert (unaided["chain"]["trusted"], unaided["chain"]["completed_from"]) == (False, None)
        assert "chain.incomplete" in [f["code"] for f in unaided["findings"]]
        assert unaided["security"]["grade"] == "F"


async def test_explain_says_how_an_incomplete_chain_was_completed(completion_endpoints: tuple[Path, int, int]) -> None:
    """`--explain` says a chain was completed from a target checked before it, or that it was not, and why."""
    root, whole_port, alone_port = completion_endpoints
    _, out, _ = await certmon(
        "check", f"127.0.0.1:{whole_port}", f"127.0.0.1:{alone_port}", "--ca-file", str(root), "--explain"
    )
    _, alone_out, _ = await certmon("check", f"127.0.0.1:{alone_port}", "--ca-file", str(root), "--explain")
    assert "(completed_from cache)" in " ".join(out.split())
    assert "chain not completed: certmon check completes a chain" in " ".join(alone_out.split())
