"""The evaluator's one handler: `certificate.observed.v1` in, `certificate.evaluated.v1` out.

Stateless, so idempotency needs no database: the output's id is derived from the input's, and a redelivered
observation yields an evaluation with the same id, which consumers downstream drop as a duplicate.
"""

import asyncio
from collections.abc import Sequence
from datetime import datetime

import structlog

from services.evaluator.service_layer.evaluate_observation import Evaluator
from shared.broker import Bus, Message, Subscription
from shared.clock import Clock
from shared.events import CloudEvent, Evaluation, Observation, derived_id, make_event

log = structlog.get_logger(__name__)

QUEUE = "certmon.evaluator.observations"
CONSUMES = "certificate.observed.v1"
PUBLISHES = "certificate.evaluated.v1"
SOURCE = "certmon/evaluator"
#: Observations evaluated in one hop to a thread and published together (the prefetch is twice this).
BATCH_SIZE = 50


class ObservationHandler:
    """Evaluates observations and publishes their evaluations, one at a time or a batch per call."""

    def __init__(self, *, bus: Bus, evaluator: Evaluator, clock: Clock) -> None:
        self._bus, self._evaluator, self._clock = bus, evaluator, clock

    async def __call__(self, message: Message[Observation]) -> None:
        """Evaluate one observation and publish its evaluation; raise on failure."""
        await self.handle_batch([message])

    async def handle_batch(self, messages: Sequence[Message[Observation]]) -> None:
        """Evaluate the observations (off the event loop, in one hop: signature checks are CPU work, and completing
        a chain may fetch an intermediate by AIA) and publish the evaluations with their confirms awaited together;
        raise if any publish failed (the ones confirmed are dropped downstream when published again)."""
        now = self._clock()
        evaluations = await asyncio.to_thread(self._evaluate, [m.payload for m in messages], now)
        outgoing = [_evaluated(m.event, e) for m, e in zip(messages, evaluations, strict=True)]
        outcomes = await asyncio.gather(*(self._bus.publish(event) for event in outgoing), return_exceptions=True)
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if failures:  # the first as it is, so the retry sees a broker away (transient) or a full queue for what it is
            raise failures[0]
        for evaluation in evaluations:
            log.info(
                "certificate_evaluated",
                target=evaluation.target_key,
                level=evaluation.alarm.level,
                grade=evaluation.security.grade if evaluation.security else None,
                findings=[f.code for f in evaluation.findings],
            )

    def _evaluate(self, observations: list[Observation], now: datetime) -> list[Evaluation]:
        return [self._evaluator.evaluate(observation, now=now) for observation in observations]


def _evaluated(observed: CloudEvent, evaluation: Evaluation) -> CloudEvent:
    """The evaluation's event, its id derived from the observation's (a redelivery yields the same id)."""
    return make_event(
        PUBLISHES,
        evaluation,
        source=SOURCE,
        subject=evaluation.target_key,
        event_id=derived_id(observed.id, "evaluated"),
    )


def subscriptions(handler: ObservationHandler) -> list[Subscription]:
    """The explicit routing of the evaluator: one queue, one routing key, one handler."""
    return [
        Subscription(
            service="evaluator",
            queue=QUEUE,
            handlers={CONSUMES: handler},
            batch_handlers={CONSUMES: handler.handle_batch},
            batch_size=BATCH_SIZE,
            prefetch=2 * BATCH_SIZE,
        )
    ]
