"""The evaluator's one handler: `certificate.observed.v1` in, `certificate.evaluated.v1` out.

Stateless, so idempotency needs no database: the output's id is derived from the input's, and a redelivered
observation yields an evaluation with the same id, which consumers downstream drop as a duplicate.
"""

import asyncio

import structlog

from services.evaluator.service_layer.evaluate_observation import Evaluator
from shared.broker import Bus, Message, Subscription
from shared.clock import Clock
from shared.events import Observation, derived_id, make_event

log = structlog.get_logger(__name__)

QUEUE = "certmon.evaluator.observations"
CONSUMES = "certificate.observed.v1"
PUBLISHES = "certificate.evaluated.v1"
SOURCE = "certmon/evaluator"


class ObservationHandler:
    """Evaluates each observation and publishes the evaluation."""

    def __init__(self, *, bus: Bus, evaluator: Evaluator, clock: Clock) -> None:
        self._bus, self._evaluator, self._clock = bus, evaluator, clock

    async def __call__(self, message: Message[Observation]) -> None:
        """Evaluate (off the event loop: signature checks are CPU work, and completing a chain may fetch an
        intermediate by AIA) and publish; raise on failure."""
        event, observation = message.event, message.payload
        evaluation = await asyncio.to_thread(self._evaluator.evaluate, observation, now=self._clock())
        out = make_event(
            PUBLISHES,
            evaluation,
            source=SOURCE,
            subject=observation.target.key,
            event_id=derived_id(event.id, "evaluated"),
        )
        await self._bus.publish(out)
        log.info(
            "certificate_evaluated",
            level=evaluation.alarm.level,
            grade=evaluation.security.grade if evaluation.security else None,
            findings=[f.code for f in evaluation.findings],
        )


def subscriptions(handler: ObservationHandler) -> list[Subscription]:
    """The explicit routing of the evaluator: one queue, one routing key, one handler."""
    return [Subscription(service="evaluator", queue=QUEUE, handlers={CONSUMES: handler})]
