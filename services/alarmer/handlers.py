"""The alarmer's message handlers and the explicit routing from queues to them.

Each handler parses its event, lets the domain decide, and persists the outcome together with the alarm
events it causes (the outbox), in one transaction that also claims the consumed event id. The routing table
(`subscriptions`) is where further inputs join: reminders and acknowledgements arrive as their own
subscriptions with their own handlers, next to the evaluations one.

The bus validates each payload before a handler sees it; one that is not an evaluation is dead-lettered there.
"""

import asyncpg
import structlog

from services.alarmer.adapters import repository
from services.alarmer.alarm_events import alarm_event, envelope, new_alarm_id
from services.alarmer.domain import consecutive_failures, decide
from services.alarmer.ownership import configured_target
from shared.broker import Message, Subscription
from shared.clock import Clock
from shared.config import CertmonConfig
from shared.db import claim_event
from shared.events import Evaluation
from shared.outbox import OutboxRelay, enqueue

log = structlog.get_logger(__name__)

EVALUATIONS_QUEUE = "certmon.alarmer.evaluations"
EVALUATED = "certificate.evaluated.v1"


class EvaluationHandler:
    """Turns each `certificate.evaluated.v1` into alarm transitions, their history and their events."""

    consumer = "alarmer.evaluations"

    def __init__(self, *, pool: asyncpg.Pool, config: CertmonConfig, outbox: OutboxRelay, clock: Clock) -> None:
        self._pool, self._config, self._outbox, self._clock = pool, config, outbox, clock

    async def __call__(self, message: Message[Evaluation]) -> None:
        """Handle one evaluated event; a redelivered event id has no effect."""
        event, evaluation = message.event, message.payload
        async with self._pool.acquire() as conn, conn.transaction():
            if not await claim_event(conn, repository.SCHEMA, event.id, self.consumer):
                log.info("evaluation_already_processed")
                return
            published = await self._apply(conn, event.id, evaluation)
        if published:
            self._outbox.kick()

    async def _apply(self, conn: asyncpg.Connection, event_id: str, evaluation: Evaluation) -> int:
        health = await repository.lock_target_health(conn, evaluation.target_key)
        if health.last_observed_at is not None and evaluation.observed_at < health.last_observed_at:
            # A newer observation of this target was applied already; this one would move alarms backwards.
            log.info("stale_evaluation_ignored", observed_at=evaluation.observed_at.isoformat())
            return 0
        failures = consecutive_failures(health.consecutive_failures, evaluation)
        stored = {s.alarm.key: s for s in await repository.open_alarms(conn, evaluation.target_key)}
        decisions = decide(
            [s.alarm for s in stored.values()],
            evaluation,
            failures=failures,
            unreachable_critical_after=self._config.defaults.unreachable_critical_after,
        )
        target = configured_target(self._config, evaluation)
        now = self._clock()
        for decision in decisions:
            previous = stored[decision.key].last_event if decision.key in stored else None
            payload = alarm_event(
                decision,
                alarm_id=decision.alarm_id or new_alarm_id(event_id, decision),
                evaluation=evaluation,
                evaluation_event_id=event_id,
                previous=previous,
                config=self._config,
                target=target,
                now=now,
            )
            await repository.record_transition(conn, payload, at=now, cause=f"evaluation {event_id}")
            await enqueue(conn, repository.SCHEMA, envelope(payload, event_id))
            log.info(
                f"alarm_{decision.transition}",
                alarm_id=payload.alarm_id,
                trigger=decision.key.trigger,
                level=decision.level,
                previous_level=decision.previous_level,
            )
        await repository.save_target_health(
            conn, evaluation.target_key, failures=failures, observed_at=evaluation.observed_at
        )
        return len(decisions)


def subscriptions(evaluations: EvaluationHandler) -> list[Subscription]:
    """Every queue the alarmer consumes and its handler."""
    return [Subscription("alarmer", EVALUATIONS_QUEUE, {EVALUATED: evaluations})]
