"""The evaluator service on the in-memory bus: certificate.observed in, certificate.evaluated out, idempotently."""

import base64
import datetime as dt
from collections.abc import AsyncIterator

import pytest

from services.evaluator.bootstrap import EvaluatorService, bootstrap
from services.evaluator.domain import TrustStore
from services.evaluator.handlers import QUEUE
from shared.broker import InMemoryBus
from shared.config import parse_config
from shared.events import CloudEvent, Evaluation, NegotiatedTls, Observation, Target, TlsFacts, derived_id, make_event
from shared.settings import Settings
from tests.support.pki import NOW, Issued, make_ca, make_leaf

EVALUATIONS = "test.evaluations"


@pytest.fixture(scope="module")
def pki() -> tuple[Issued, Issued, Issued]:
    """Root, intermediate and a leaf for shop.example, valid 20 more days."""
    root = make_ca("Handler Root")
    intermediate = make_ca("Handler Intermediate", issuer=root)
    leaf = make_leaf(intermediate, ("shop.example",), not_after=NOW + dt.timedelta(days=20))
    return root, intermediate, leaf


@pytest.fixture
async def running(pki: tuple[Issued, Issued, Issued]) -> AsyncIterator[tuple[InMemoryBus, EvaluatorService]]:
    """The evaluator bootstrapped on an in-memory bus with a fixed clock and the test root as the only anchor."""
    root, _, _ = pki
    config = parse_config(
        {
            "servers": {"web-01": {"addresses": ["10.0.0.5"]}},
            "certificates": [{"match": {"san": "shop.example"}, "critical": True, "thresholds": {"warning_days": 45}}],
        }
    )
    bus = InMemoryBus()
    bus.declare(EVALUATIONS, ["certificate.evaluated.v1"])
    service = bootstrap(
        Settings(), config, bus=bus, pool=None, clock=lambda: NOW, trust=TrustStore(anchors=(root.cert,))
    )
    await bus.start()
    await service.start()
    try:
        yield bus, service
    finally:
        await service.stop()
        await bus.close()


def _observed(pki: tuple[Issued, Issued, Issued]) -> CloudEvent:
    _, intermediate, leaf = pki
    observation = Observation(
        target=Target(host="shop.example", port=443),
        observed_at=NOW,
        address="10.0.0.5",
        chain=[base64.b64encode(c.der).decode() for c in (leaf, intermediate)],
        tls=TlsFacts(negotiated=NegotiatedTls(version="TLSv1.3", cipher_suite="TLS_AES_128_GCM_SHA256")),
    )
    return make_event("certificate.observed.v1", observation, source="certmon/scanner")


async def test_observed_event_becomes_an_evaluated_event(
    running: tuple[InMemoryBus, EvaluatorService], pki: tuple[Issued, Issued, Issued]
) -> None:
    """One observation → one evaluation of the same target, under the policy its certificate rule sets."""
    bus, service = running
    observed = _observed(pki)
    await bus.publish(observed)
    await bus.drain()
    (out,) = bus.pending(EVALUATIONS)
    assert out.type == "io.certmon.certificate.evaluated.v1"
    assert out.source == "certmon/evaluator"
    assert out.id == derived_id(observed.id, "evaluated")
    evaluation = Evaluation.model_validate(out.data)
    assert (evaluation.target_key, evaluation.target.server, evaluation.address) == (
        "shop.example:443",
        "web-01",
        "10.0.0.5",
    )
    assert evaluation.observed_at == NOW and evaluation.evaluated_at == NOW
    assert evaluation.chain.trusted is True
    assert evaluation.critical is True
    assert evaluation.owner is None
    assert evaluation.alarm.level == "warning"  # 20 days left, under the rule's warning_days of 45
    assert [f.code for f in evaluation.findings] == ["expiry.within_30_days"]
    assert service.name == "evaluator"
    assert not bus.dead_letters


async def test_redelivered_observation_yields_the_same_evaluated_event(
    running: tuple[InMemoryBus, EvaluatorService], pki: tuple[Issued, Issued, Issued]
) -> None:
    """The same observed event delivered twice produces two evaluated events with one id and equal data."""
    bus, _ = running
    observed = _observed(pki)
    await bus.publish(observed)
    await bus.publish(observed)
    await bus.drain()
    first, second = bus.pending(EVALUATIONS)
    assert first.id == second.id == derived_id(observed.id, "evaluated")
    assert first.data == second.data


async def test_an_event_that_is_not_an_observation_is_dead_lettered(
    running: tuple[InMemoryBus, EvaluatorService],
) -> None:
    """A malformed payload is rejected until the delivery limit, then dead-lettered; nothing is published."""
    bus, _ = running
    bogus = CloudEvent(source="test", type="io.certmon.certificate.observed.v1", data={"target": "nonsense"})
    await bus.publish(bogus)
    await bus.drain()
    assert [(queue, event.id) for queue, event in bus.dead_letters] == [(QUEUE, bogus.id)]
    assert bus.pending(EVALUATIONS) == []
