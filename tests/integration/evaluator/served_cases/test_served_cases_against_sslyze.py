"""Certmon agrees with sslyze on trust, chain order, hostname and expiry, zoo case by case.

sslyze's certificate_info scan runs against the same real servers with the zoo's trust store as its custom CA
file. sslyze pins an older `cryptography` than certmon, so it runs in its own virtualenv (`tests.support.sslyze_env`):
one driver process scans every judged case at once and the tests compare its verdicts with certmon's. sslyze 6
checks the hostname and the dates inside path validation (`cryptography`'s server verifier), so those verdicts are
read from its validation error; a path it validates is one a client accepts.
"""

import asyncio
import contextlib
import datetime as dt
import json
import ssl
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from services.evaluator.domain import TrustStore
from shared.events import Evaluation
from tests.integration.evaluator.served_cases.cases import CASES, HOST, Served, served_context
from tests.integration.evaluator.served_cases.test_served_case_verdicts import observe_and_evaluate
from tests.support.sslyze_env import BUILD_SECONDS, DRIVER, sslyze_env_problem, sslyze_python
from tests.support.tls_server import tls_server

#: The first run builds sslyze's virtualenv inside the first test's setup, which may take up to BUILD_SECONDS.
pytestmark = pytest.mark.timeout(BUILD_SECONDS + 120)

#: Findings for which a client refuses the connection although the path to an anchor verifies.
REFUSED_BY_CLIENTS = frozenset(
    {
        "hostname.mismatch",
        "hostname.cn_only",
        "expiry.expired",
        "expiry.not_yet_valid",
        "eku.no_server_auth",
        "basic_constraints.ca_leaf",
    }
)

#: Cases sslyze cannot judge like certmon: a weak key is a grade matter for certmon, a path failure for sslyze.
#: The protocol cases (pinned versions) serve the healthy chain: nothing about the certificate to compare.
NOT_JUDGED = {"rsa_1024", "ec_p192"} | {case.name for case in CASES if case.versions is not None}

#: sslyze calls a chain ordered only when each certificate issues the one before it; a cross-signed chain
#: sends two variants of one intermediate, which certmon does not count as disorder.
ORDER_NOT_COMPARABLE = {"cross_signed"}

JUDGED = [case.name for case in CASES if case.name not in NOT_JUDGED]

#: One scanner over about twenty local servers takes a few seconds; this only bounds a hang.
DRIVER_SECONDS = 90


class SslyzeVerdict(BaseModel):
    """One line of the driver's output: sslyze's view of one served chain."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    port: int
    error: str | None
    custom_ca_valid: bool | None = None
    custom_ca_error: str | None = None
    received_chain_has_valid_order: bool | None = None
    leaf_not_valid_after: dt.datetime | None = None


async def scan_with_sslyze(
    python: Path, contexts: dict[str, ssl.SSLContext], ca_file: Path
) -> dict[str, SslyzeVerdict]:
    """Serve every case at once and let one driver process scan them all, trusting only `ca_file`."""
    async with contextlib.AsyncExitStack() as servers:
        ports = {name: await servers.enter_async_context(tls_server(ctx)) for name, ctx in contexts.items()}
        jobs = [{"host": "127.0.0.1", "port": port, "sni": HOST, "ca_file": str(ca_file)} for port in ports.values()]
        driver = await asyncio.create_subprocess_exec(
            str(python),
            str(DRIVER),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(DRIVER_SECONDS):
                stdout, stderr = await driver.communicate(json.dumps(jobs).encode())
        finally:
            if driver.returncode is None:  # timed out: do not leave sslyze scanning in the background
                driver.kill()
                await driver.wait()
    assert driver.returncode == 0, stderr.decode(errors="replace")
    verdicts = [SslyzeVerdict.model_validate_json(line) for line in stdout.decode().splitlines()]
    assert [v.port for v in verdicts] == list(ports.values()), stdout
    return dict(zip(ports, verdicts, strict=True))


def servable(zoo: dict[str, Served]) -> dict[str, ssl.SSLContext]:
    """Server contexts of the judged cases this OpenSSL can serve; a case that needs more skips in its own test."""
    contexts: dict[str, ssl.SSLContext] = {}
    for name in JUDGED:
        served = zoo[name]
        try:
            contexts[name] = served_context(served)
        except ssl.SSLError:
            if served.case.needs is None:
                raise
    return contexts


@pytest.fixture(scope="module")
def sslyze_verdicts(zoo: dict[str, Served], zoo_dir: Path) -> dict[str, SslyzeVerdict]:
    """sslyze's verdict on every judged case, from its own virtualenv; skips when that cannot be built."""
    python = sslyze_python()
    if python is None:
        pytest.skip(f"sslyze's virtualenv could not be built: {sslyze_env_problem()}")
    return asyncio.run(scan_with_sslyze(python, servable(zoo), zoo_dir / "anchors.pem"))


def certmon_accepts(evaluation: Evaluation) -> bool:
    """A verified path to an anchor and nothing for which a client refuses the certificate."""
    return evaluation.chain.trusted and not {f.code for f in evaluation.findings} & REFUSED_BY_CLIENTS


@pytest.mark.parametrize("name", JUDGED)
async def test_certmon_agrees_with_sslyze(
    name: str, zoo: dict[str, Served], zoo_trust: TrustStore, sslyze_verdicts: dict[str, SslyzeVerdict]
) -> None:
    """Trust, order, hostname and expiry: sslyze's verdict on the served chain is certmon's."""
    evaluation = await observe_and_evaluate(zoo[name], zoo_trust)
    sslyze = sslyze_verdicts[name]
    assert sslyze.error is None, sslyze.error
    error = sslyze.custom_ca_error or ""
    codes = {f.code for f in evaluation.findings}
    assert certmon_accepts(evaluation) == sslyze.custom_ca_valid, error
    if name not in ORDER_NOT_COMPARABLE:
        strictly_ordered = evaluation.chain.ordered and "chain.extra_certificates" not in codes
        assert strictly_ordered == sslyze.received_chain_has_valid_order
    assert ("no matching subjectAltName" in error) == ("hostname.mismatch" in codes), error
    assert ("has no subjectAltName" in error) == ("hostname.cn_only" in codes), error
    assert evaluation.expiry is not None and evaluation.certificate is not None
    outside_validity = evaluation.expiry.status in ("expired", "not_yet_valid")
    assert ("not valid at validation time" in error) == outside_validity, error
    assert evaluation.certificate.not_after == sslyze.leaf_not_valid_after
