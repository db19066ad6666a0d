"""The served cases (a badssl-style zoo): each served by a real TLS server on 127.0.0.1, observed by the
scanner, judged exactly."""

import ssl

import pytest

from services.evaluator import evaluate_observation
from services.evaluator.domain import EvaluatorCaches, TrustStore
from services.scanner.domain.limits import ProbeLimits
from services.scanner.service_layer.observe import observe
from shared.config import parse_config
from shared.events import Evaluation, Target
from tests.integration.evaluator.served_cases.cases import CASES, HOST, Served, served_context
from tests.support.pki import NOW
from tests.support.tls_server import tls_server

FAST = ProbeLimits(connect_seconds=2, handshake_seconds=2, target_seconds=5)


def load_context(served: Served) -> ssl.SSLContext:
    """The server context for a case, or a skip naming what this OpenSSL cannot serve."""
    try:
        return served_context(served)
    except ssl.SSLError as exc:
        if served.case.needs is None:
            raise
        pytest.skip(f"this OpenSSL cannot load {served.case.needs}: {exc}")


async def observe_and_evaluate(served: Served, trust: TrustStore) -> Evaluation:
    """Serve the case, observe it with the scanner (SNI `localhost`, the case's profile) and evaluate it at the
    PKI's `NOW`."""
    async with tls_server(load_context(served)) as port:
        target = Target(host="127.0.0.1", port=port, sni=HOST, profile=served.case.profile)
        observation = await observe(target, now=NOW, limits=FAST)
    if observation.error is not None and served.case.needs is not None:
        pytest.skip(f"no TLS handshake with {served.case.needs}: {observation.error.message}")
    assert observation.error is None, observation.error
    assert len(observation.chain) == len(served.sent)
    return evaluate_observation(observation, config=parse_config({}), trust=trust, now=NOW, caches=EvaluatorCaches())


@pytest.mark.parametrize("name", [case.name for case in CASES])
async def test_zoo_case_has_exact_findings_level_and_grade(
    name: str, zoo: dict[str, Served], zoo_trust: TrustStore
) -> None:
    """Each served case yields exactly its finding codes, alarm level, grade and grade ignoring trust."""
    served = zoo[name]
    evaluation = await observe_and_evaluate(served, zoo_trust)
    case = served.case
    assert {f.code for f in evaluation.findings} == case.codes, [f.message for f in evaluation.findings]
    assert evaluation.alarm.level == case.level
    assert evaluation.security is not None
    assert (evaluation.security.grade, evaluation.security.grade_ignoring_trust) == (
        case.grade,
        case.grade_ignoring_trust,
    ), evaluation.security.caps
