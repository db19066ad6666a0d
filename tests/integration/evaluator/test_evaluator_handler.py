"""The evaluator service on the in-memory bus: certificate.observed in, certificate.evaluated out, idempotently."""

import base64
import datetime as dt
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from services.evaluator.bootstrap import EvaluatorService, bootstrap
from services.evaluator.domain import TrustStore
from services.evaluator.domain.caches import EvaluatorCaches
from services.evaluator.handlers import QUEUE, ObservationHandler
from services.evaluator.service_layer.evaluate_observation import Evaluator
from shared.broker import InMemoryBus, Message, PublishError
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


async def test_observations_that_arrive_together_are_evaluated_as_one_batch(
    running: tuple[InMemoryBus, EvaluatorService], pki: tuple[Issued, Issued, Issued]
) -> None:
    """Observations published together reach the batch handler together (the in-memory bus consumes 8 at once)
    and each yields its own evaluation, with the id derived from its observation's."""
    bus, _ = running
    batches_before, messages_before = _batch_samples()
    observed = [_observed(pki) for _ in range(8)]
    for event in observed:
        await bus.publish(event)
    await bus.drain()
    assert sorted(e.id for e in bus.pending(EVALUATIONS)) == sorted(derived_id(o.id, "evaluated") for o in observed)
    batches, messages = _batch_samples()
    assert messages - messages_before == 8
    assert batches - batches_before < 8  # some arrived together


def _batch_samples() -> tuple[float, float]:
    """How many batches the evaluator's queue handled so far, and how many messages they held."""
    labels = {"queue": QUEUE}
    count = REGISTRY.get_sample_value("certmon_consumer_batch_size_count", labels) or 0.0
    return count, REGISTRY.get_sample_value("certmon_consumer_batch_size_sum", labels) or 0.0


async def test_a_publish_refused_in_a_batch_raises_the_refusal_itself(pki: tuple[Issued, Issued, Issued]) -> None:
    """When the broker refuses one of a batch's publishes, the batch raises that `PublishError` (not a group of
    errors), so the dispatcher retries it as a broker away, and the others were published."""
    root, _, _ = pki

    class RefusingBus(InMemoryBus):
        async def publish(self, event: CloudEvent) -> None:
            if event.id == refused:
                raise PublishError("not confirmed")
            await super().publish(event)

    bus = RefusingBus()
    bus.declare(EVALUATIONS, ["certificate.evaluated.v1"])
    evaluator = Evaluator(parse_config({}), TrustStore(anchors=(root.cert,)), EvaluatorCaches())
    handler = ObservationHandler(bus=bus, evaluator=evaluator, clock=lambda: NOW)
    observed = [_observed(pki) for _ in range(3)]
    refused = derived_id(observed[1].id, "evaluated")
    messages = [Message(e, Observation.model_validate(e.data)) for e in observed]
    with pytest.raises(PublishError):
        await handler.handle_batch(messages)
    assert sorted(e.id for e in bus.pending(EVALUATIONS)) == sorted(
        derived_id(o.id, "evaluated") for o in (observed[0], observed[2])
    )
