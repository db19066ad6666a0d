"""The alarmer's message handlers and the explicit routing from queues to them.

Each handler parses its event, lets the domain decide, and persists the outcome together with the alarm
events it causes, in one unit of work of the alarm store (`ports.AlarmStore`) that also claims the consumed
event id. The routing table (`subscriptions`) lists every input: evaluations and acknowledgement requests,
each on its own queue with its own handler. (Reminders are no message: the `service_layer` sweep sends them.)
Evaluations also come in batches, all in one unit of work (that is the alarmer's throughput), with the effect of
handling each alone in their order.

The bus validates each payload before a handler sees it; one that does not validate is dead-lettered there.
"""

from collections.abc import Callable, Sequence
from datetime import datetime

import structlog

from services.alarmer.domain.alarm_events import alarm_event, envelope, new_alarm_id
from services.alarmer.domain.alarms import consecutive_failures, decide
from services.alarmer.domain.lifecycle import Ignored, acknowledge, acknowledgement_cause
from services.alarmer.domain.ownership import Ownership
from services.alarmer.ports import AlarmStore, AlarmUnitOfWork, StoredAlarm, TargetHealth
from services.alarmer.service_layer.metrics import committed
from shared.broker import Message, Subscription
from shared.clock import Clock
from shared.config import CertmonConfig
from shared.events import AcknowledgementRequested, AlarmEvent, Evaluation

log = structlog.get_logger(__name__)

EVALUATIONS_QUEUE = "certmon.alarmer.evaluations"
EVALUATED = "certificate.evaluated.v1"
ACKNOWLEDGEMENTS_QUEUE = "certmon.alarmer.acknowledgements"
ACKNOWLEDGEMENT_REQUESTED = "acknowledgement.requested.v1"


class EvaluationHandler:
    """Turns each `certificate.evaluated.v1` into alarm transitions, their history and their events; one message
    is handled as a batch of one."""

    consumer = "alarmer.evaluations"

    def __init__(
        self,
        *,
        store: AlarmStore,
        config: CertmonConfig,
        clock: Clock,
        reminder_scheduled: Callable[[datetime], None] | None = None,
        ownership: Ownership | None = None,
    ) -> None:
        """`reminder_scheduled` is told, after the commit, each due time this handler scheduled (the sweep's
        `expect`), so a short cadence is kept without the sweep reading the database more often. `ownership` is
        `config`'s index (bootstrap shares one with the reminder sweep); None indexes `config` here."""
        self._store, self._config, self._clock = store, config, clock
        self._ownership = Ownership.of(config, ownership)
        self._reminder_scheduled = reminder_scheduled

    async def __call__(self, message: Message[Evaluation]) -> None:
        """Handle one evaluated event; a redelivered event id has no effect."""
        await self.handle_batch([message])

    async def handle_batch(self, messages: Sequence[Message[Evaluation]]) -> None:
        """Handle evaluated events in one unit of work, with the effect of handling each alone, in their order; a
        redelivered event id (or one repeated in the batch) has no effect."""
        async with self._store.unit_of_work() as uow:
            fresh = await self._claim(uow, messages)
            if not fresh:
                return
            targets = await _Targets.read(uow, {message.payload.target_key for message in fresh})
            transitions: list[AlarmEvent] = []
            for message in fresh:
                # The bus binds a message's context only when it hands it over alone.
                with structlog.contextvars.bound_contextvars(
                    event_id=message.event.id, target=message.payload.target_key
                ):
                    transitions += await self._apply(uow, targets, message.event.id, message.payload)
        committed(transitions)
        if self._reminder_scheduled is not None:
            for payload in transitions:
                if payload.next_reminder_at is not None:
                    self._reminder_scheduled(payload.next_reminder_at)

    async def _claim(self, uow: AlarmUnitOfWork, messages: Sequence[Message[Evaluation]]) -> list[Message[Evaluation]]:
        """The messages to handle: those whose event id this claim is the first of (a repeat in the batch is not)."""
        claimed = await uow.claim_all([message.event.id for message in messages], self.consumer)
        for message, new in zip(messages, claimed, strict=True):
            if not new:
                log.info("evaluation_already_processed", event_id=message.event.id)
        return [message for message, new in zip(messages, claimed, strict=True) if new]

    async def _apply(
        self, uow: AlarmUnitOfWork, targets: "_Targets", event_id: str, evaluation: Evaluation
    ) -> list[AlarmEvent]:
        health = await targets.health(evaluation.target_key)
        if health.last_observed_at is not None and evaluation.observed_at < health.last_observed_at:
            # A newer observation of this target was applied already; this one would move alarms backwards.
            log.info("stale_evaluation_ignored", observed_at=evaluation.observed_at.isoformat())
            return []
        failures = consecutive_failures(health.consecutive_failures, evaluation)
        stored = {s.alarm.key: s for s in await targets.open_alarms(evaluation.target_key)}
        decisions = decide(
            [s.alarm for s in stored.values()],
            evaluation,
            failures=failures,
            unreachable_critical_after=self._config.defaults.unreachable_critical_after,
        )
        target = self._ownership.configured_target(evaluation)
        now = self._clock()
        transitions: list[AlarmEvent] = []
        for decision in decisions:
            previous = stored[decision.key].last_event if decision.key in stored else None
            payload = alarm_event(
                decision,
                alarm_id=decision.alarm_id or new_alarm_id(event_id, decision),
                evaluation=evaluation,
                evaluation_event_id=event_id,
                previous=previous,
                ownership=self._ownership,
                target=target,
                now=now,
            )
            await uow.record_transition(payload, at=now, cause=f"evaluation {event_id}")
            await uow.publish_later(envelope(payload, event_id))
            transitions.append(payload)
            log.info(
                f"alarm_{decision.transition}",
                alarm_id=payload.alarm_id,
                trigger=decision.key.trigger,
                level=decision.level,
                previous_level=decision.previous_level,
                state=payload.state,
            )
        await uow.save_target_health(evaluation.target_key, failures=failures, observed_at=evaluation.observed_at)
        return transitions


class _Targets:
    """The health and open alarms of a batch's targets, read for all of them at once: their health locked up front
    (in target key order, by the store), so that replicas handling overlapping batches never deadlock. They serve
    each target's first evaluation; a later one in the batch reads the store again, after what the earlier wrote."""

    def __init__(
        self, uow: AlarmUnitOfWork, health: dict[str, TargetHealth], alarms: dict[str, list[StoredAlarm]]
    ) -> None:
        self._uow, self._health, self._alarms = uow, health, alarms

    @classmethod
    async def read(cls, uow: AlarmUnitOfWork, target_keys: set[str]) -> "_Targets":
        """Lock the targets' health and read it and their open alarms, a statement or two for all."""
        return cls(uow, await uow.lock_target_healths(target_keys), await uow.open_alarms_by_target(target_keys))

    async def health(self, target_key: str) -> TargetHealth:
        """The target's health as it stands in this unit of work (locked)."""
        read = self._health.pop(target_key, None)
        return read if read is not None else await self._uow.lock_target_health(target_key)

    async def open_alarms(self, target_key: str) -> list[StoredAlarm]:
        """The target's open alarms as they stand in this unit of work."""
        read = self._alarms.pop(target_key, None)
        return read if read is not None else await self._uow.open_alarms(target_key)


class AcknowledgementHandler:
    """Turns each `acknowledgement.requested.v1` into the `acknowledged` transition of an open alarm, its history
    and `alarm.acknowledged.v1`; a request for an alarm already acknowledged, resolved or unknown changes nothing."""

    consumer = "alarmer.acknowledgements"

    def __init__(self, *, store: AlarmStore, clock: Clock) -> None:
        self._store, self._clock = store, clock

    async def __call__(self, message: Message[AcknowledgementRequested]) -> None:
        """Handle one acknowledgement request; a redelivered event id has no effect."""
        event, request = message.event, message.payload
        async with self._store.unit_of_work() as uow:
            if not await uow.claim(event.id, self.consumer):
                log.info("acknowledgement_already_processed", alarm_id=request.alarm_id)
                return
            outcome = acknowledge(await uow.lock_alarm(request.alarm_id), request, now=self._clock())
            if isinstance(outcome, Ignored):
                log.info("acknowledgement_ignored", alarm_id=request.alarm_id, reason=outcome.reason, by=request.by)
                return
            await uow.record_transition(outcome, at=outcome.occurred_at, cause=acknowledgement_cause(request))
            await uow.publish_later(envelope(outcome, event.id))
        committed([outcome])
        log.info("alarm_acknowledged", alarm_id=outcome.alarm_id, by=request.by, via=request.via)


def subscriptions(evaluations: EvaluationHandler, acknowledgements: AcknowledgementHandler) -> list[Subscription]:
    """Every queue the alarmer consumes and its handler."""
    return [
        Subscription(
            "alarmer",
            EVALUATIONS_QUEUE,
            {EVALUATED: evaluations},
            batch_handlers={EVALUATED: evaluations.handle_batch},
            batch_size=100,
            prefetch=200,
        ),
        Subscription("alarmer", ACKNOWLEDGEMENTS_QUEUE, {ACKNOWLEDGEMENT_REQUESTED: acknowledgements}),
    ]
