"""The books of a fault run, kept as Jepsen's queue checker keeps them: after the drain, every effect is counted
against what should have happened, and each difference is named.

- Alarm transitions: the alarmer's history against the alarm events it published (a tap queue bound to
  `alarm.#` before any service started keeps a copy of each), against the reporter's `alarm_events`; each
  alarm's history must read as one life (one raise, first; levels that follow on; one resolve, last); and each
  target's alarms that are not resolved must be those its final certificate implies.
- Deliveries: each alarm event, to each recipient of each channel, exactly once at the sinks: the webhook by the
  CloudEvent's id, an email by its Message-ID (derived from the delivery's idempotency key), a trap by the
  alarm id, notification and levels it carries (a trap has no event id: traps are counted against events).
- What is left over: messages in a queue or unacknowledged, dead letters (with the reason in their headers),
  unpublished outbox rows, deliveries not `sent`.
"""

import itertools
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import asyncpg

from services.notifier.adapters.email import message_id
from services.notifier.adapters.snmp import LEVELS, NO_LEVEL
from shared.broker.dead_letters import list_dead_letters
from tests.support.faults.estate import LEVELS as STATE_LEVELS
from tests.support.faults.estate import Estate
from tests.support.service_processes import SCHEMAS_WITH_OUTBOX
from tests.support.smtp import SmtpServer
from tests.support.snmptrapd import Snmptrapd
from tests.support.webhook_sink import Request, WebhookSink

TAP_QUEUE = "faults.tap.alarm-events"
DELIVERY_CHANNELS = ("email", "snmp", "webhook")
SNMP_NOTIFICATIONS = {
    "raised": "certmonAlarmRaised",
    "changed": "certmonAlarmChanged",
    "reminded": "certmonAlarmReminder",
    "acknowledged": "certmonAlarmAcknowledged",
    "resolved": "certmonAlarmResolved",
}


@dataclass(frozen=True)
class Recipients:
    """Who the one owner of the run's alarms is told through, and the email sender (part of a Message-ID)."""

    emails: tuple[str, ...]  # one message each (`delivery: individual`)
    snmp: str  # the receiver's name
    webhook: str
    from_address: str


@dataclass(frozen=True)
class AlarmEventRecord:
    """One alarm event as published."""

    event_id: str
    alarm_id: str
    transition: str
    level: str
    previous_level: str | None


@dataclass
class Tally:
    """One kind of effect: how many were expected and delivered, and which were lost, doubled or unexpected."""

    expected: int = 0
    delivered: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, expected: Counter[Any], delivered: Counter[Any]) -> "Tally":
        """Compare two multisets of identities: each identity as often delivered as expected."""
        tally = cls(expected=sum(expected.values()), delivered=sum(delivered.values()))
        for identity in expected.keys() | delivered.keys():
            want, got = expected[identity], delivered[identity]
            if want and got < want:
                tally.lost += [repr(identity)] * (want - got)
            elif want and got > want:
                tally.duplicated += [repr(identity)] * (got - want)
            elif not want:
                tally.unexpected += [repr(identity)] * got
        return tally


@dataclass
class Books:
    """Everything counted after the drain."""

    evaluations: int
    alarm_events: list[AlarmEventRecord]
    effects: dict[str, Tally]  # "alarm history", "reporter alarm_events", "email", "snmp", "webhook"
    problems: list[str]  # histories that do not read as one life, final states not reached
    dead_letters: list[str]
    queued: dict[str, tuple[int, int]]  # queue → (ready, unacknowledged), only those not empty
    unpublished: int
    unsettled_deliveries: list[str]
    partial_webhook_calls: int = 0  # cut short by a kill: attempts, not deliveries (their retry is counted)

    @property
    def lost(self) -> int:
        """Effects missing, over every kind."""
        return sum(len(t.lost) for t in self.effects.values())

    @property
    def duplicated(self) -> int:
        """Effects made more than once (or made and never called for), over every kind."""
        return sum(len(t.duplicated) + len(t.unexpected) for t in self.effects.values())

    @property
    def resent(self) -> list[str]:
        """Deliveries made more than once (the same idempotency key: one alarm event to one recipient over one
        channel), as opposed to doubled alarm transitions or deliveries nothing called for."""
        return [item for channel in DELIVERY_CHANNELS for item in self.effects[channel].duplicated]

    @property
    def duplicated_otherwise(self) -> int:
        """Duplicates that are not `resent` deliveries."""
        return self.duplicated - len(self.resent)

    @property
    def clean(self) -> bool:
        """No loss, no duplicate, nothing left over, nothing wrong in the histories."""
        return not (
            self.lost
            or self.duplicated
            or self.problems
            or self.dead_letters
            or self.queued
            or self.unpublished
            or self.unsettled_deliveries
        )


async def declare_tap(amqp_url: str) -> None:
    """A durable queue keeping a copy of every alarm event published (declare it before any service runs)."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange("certmon.events", aio_pika.ExchangeType.TOPIC, durable=True)
        tap = await channel.declare_queue(TAP_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
        await tap.bind(exchange, "alarm.#")


async def take_messages(amqp_url: str, queue_name: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Every message in a queue, taken off it."""
    connection = await aio_pika.connect(amqp_url)
    taken = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            taken.append(message)
    return taken


def published_alarm_events(messages: Iterable[aio_pika.abc.AbstractIncomingMessage]) -> list[AlarmEventRecord]:
    """The alarm events the tap saw, once each (a publish retried after a lost confirm arrives twice, one id)."""
    events: dict[str, AlarmEventRecord] = {}
    for message in messages:
        event = json.loads(message.body)
        data = event["data"]
        events.setdefault(
            event["id"],
            AlarmEventRecord(event["id"], data["alarm_id"], data["transition"], data["level"], data["previous_level"]),
        )
    return list(events.values())


async def dead_letter_lines(amqp_url: str) -> list[str]:
    """One line per dead letter, left in its queue: its event, the queue it failed on and why (as `certmon dlq
    list` reads them: certmon's headers, else the broker's `x-death`)."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        letters = await list_dead_letters(connection)
    return [
        f"{letter.routing_key} {letter.event_id}: queue {letter.queue}, attempts {letter.attempts}, {letter.reason}"
        for letter in letters
    ]


def history_problems(history: Sequence[Mapping[str, Any]]) -> list[str]:
    """Where an alarm's transitions (ordered by alarm, then time) do not read as one life."""
    problems: list[str] = []
    by_alarm: dict[str, list[Mapping[str, Any]]] = {}
    for row in history:
        by_alarm.setdefault(str(row["alarm_id"]), []).append(row)
    for alarm_id, rows in by_alarm.items():
        steps = [f"{r['transition']}:{r['from_level']}->{r['to_level']}" for r in rows]
        if rows[0]["transition"] != "raised" or sum(r["transition"] == "raised" for r in rows) != 1:
            problems.append(f"alarm {alarm_id}: not raised exactly once, first: {steps}")
        resolved = [i for i, r in enumerate(rows) if r["transition"] == "resolved"]
        if len(resolved) > 1 or (resolved and resolved[0] != len(rows) - 1):
            problems.append(f"alarm {alarm_id}: resolved other than once at the end: {steps}")
        for before, after in itertools.pairwise(rows):
            moved = after["transition"] in ("changed", "resolved")
            if moved and (after["from_level"] != before["to_level"] or after["to_level"] == before["to_level"]):
                problems.append(f"alarm {alarm_id}: {after['transition']} does not follow on: {steps}")
    return problems


def final_state_problems(estate: Estate, alarms: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each target's alarms that are not resolved, against those its final certificate (or absence) implies."""
    problems = []
    for target in estate.targets:
        standing = sorted(
            (row["fingerprint"], row["trigger"], row["level"])
            for row in alarms
            if row["target_key"] == target.key and row["state"] != "resolved"
        )
        level = STATE_LEVELS[target.state]
        trigger = "reachability" if target.state == "missing" else "expiry"
        expected = [] if level == "ok" else [(target.fingerprint(target.state), trigger, level)]
        if standing != expected:
            problems.append(f"{target.key} is {target.state} but its standing alarms are {standing}")
    return problems


def expected_deliveries(
    events: list[AlarmEventRecord], recipients: Recipients
) -> tuple[Counter[Any], Counter[Any], Counter[Any]]:
    """What the sinks should hold (one receiver each of SNMP and webhooks): emails by Message-ID, traps by
    (alarm id, notification, level, previous level), webhook calls by event id."""
    emails: Counter[Any] = Counter()
    traps: Counter[Any] = Counter()
    webhooks: Counter[Any] = Counter()
    for event in events:
        for address in recipients.emails:
            emails[message_id(f"{event.event_id}|email|{address}", recipients.from_address)] += 1
        traps[_trap_identity(event)] += 1
        webhooks[event.event_id] += 1
    return emails, traps, webhooks


def _trap_identity(event: AlarmEventRecord) -> tuple[str, str, int, int]:
    previous = LEVELS[event.previous_level] if event.previous_level else NO_LEVEL
    return (event.alarm_id, SNMP_NOTIFICATIONS[event.transition], LEVELS[event.level], previous)


_ENUM_NUMBER = re.compile(r"\((\d+)\)")


def delivered_traps(trapd: Snmptrapd) -> Counter[Any]:
    """The traps snmptrapd printed, as `_trap_identity` names them."""
    found: Counter[Any] = Counter()
    for trap in trapd.traps():
        varbinds = trap.varbinds

        def number(name: str, varbinds: dict[str, str] = varbinds) -> int:
            value = varbinds.get(f"CERTMON-MIB::{name}.0", "")
            match = _ENUM_NUMBER.search(value)
            return int(match[1]) if match else int(value.rpartition(" ")[2] or -1)

        alarm_id = varbinds.get("CERTMON-MIB::certmonAlarmId.0", "").removeprefix("STRING: ").strip('"')
        notification = trap.notification.rpartition("::")[2]
        found[(alarm_id, notification, number("certmonAlarmLevel"), number("certmonAlarmPreviousLevel"))] += 1
    return found


def delivered(smtp: SmtpServer, trapd: Snmptrapd, webhooks: WebhookSink) -> dict[str, Counter[Any]]:
    """What each sink holds, by channel, as the books identify deliveries."""
    return {"email": delivered_emails(smtp), "snmp": delivered_traps(trapd), "webhook": delivered_webhooks(webhooks)}


def delivered_emails(smtp: SmtpServer) -> Counter[Any]:
    """The Message-IDs of the messages the SMTP sink accepted, once per recipient it accepted each for."""
    return Counter(str(received.message["Message-ID"]) for received in smtp.received for _ in received.rcpt_tos)


def delivered_webhooks(sink: WebhookSink) -> Counter[Any]:
    """The CloudEvent ids the webhook sink was posted (a call whose body was cut short, its sender killed while
    sending it, is no delivery: see `partial_webhook_calls`)."""
    return Counter(body["id"] for body in map(_json_body, sink.received) if body is not None)


def partial_webhook_calls(sink: WebhookSink) -> int:
    """Calls the webhook sink received without a whole body."""
    return sum(_json_body(request) is None for request in sink.received)


def _json_body(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(request.body)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def read_tables(database_url: str) -> dict[str, Any]:
    """The rows the books need, read in one connection."""
    conn = await asyncpg.connect(database_url)
    try:
        return {
            "history": await conn.fetch(
                "SELECT alarm_id, transition, from_level, to_level FROM alarmer.alarm_history ORDER BY alarm_id, at, id"
            ),
            "alarms": await conn.fetch("SELECT id, target_key, fingerprint, trigger, level, state FROM alarmer.alarms"),
            "reporter_events": [r["event_id"] for r in await conn.fetch("SELECT event_id FROM reporter.alarm_events")],
            "unsettled": [
                f"{r['idempotency_key']}: {r['status']} after {r['attempts']} ({r['last_error']})"
                for r in await conn.fetch(
                    "SELECT idempotency_key, status, attempts, last_error FROM notifier.deliveries "
                    "WHERE status <> 'sent'"
                )
            ],
            "unpublished": sum(
                [
                    await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL")
                    for schema in SCHEMAS_WITH_OUTBOX
                ]
            ),
            "evaluations": await conn.fetchval(
                "SELECT count(*) FROM alarmer.processed_events WHERE consumer = 'alarmer.evaluations'"
            ),
        }
    finally:
        await conn.close()


def keep_books(
    *,
    estate: Estate,
    tables: dict[str, Any],
    events: list[AlarmEventRecord],
    dead_letters: list[str],
    queued: dict[str, tuple[int, int]],
    recipients: Recipients,
    smtp: SmtpServer,
    trapd: Snmptrapd,
    webhooks: WebhookSink,
) -> Books:
    """Count every effect against what should have happened."""
    history: list[asyncpg.Record] = tables["history"]
    published = Counter((e.alarm_id, e.transition, e.level) for e in events)
    recorded = Counter((str(r["alarm_id"]), r["transition"], r["to_level"]) for r in history)
    emails, traps, calls = expected_deliveries(events, recipients)
    received = delivered(smtp, trapd, webhooks)
    effects = {
        # Each transition recorded in the history was published once (a publish without a history row, or two
        # events for one row, is a duplicate; a row never published is lost).
        "alarm events published": Tally.of(recorded, published),
        "reporter alarm_events": Tally.of(Counter(e.event_id for e in events), Counter(tables["reporter_events"])),
        "email": Tally.of(emails, received["email"]),
        "snmp": Tally.of(traps, received["snmp"]),
        "webhook": Tally.of(calls, received["webhook"]),
    }
    return Books(
        evaluations=tables["evaluations"],
        alarm_events=events,
        effects=effects,
        problems=history_problems(history) + final_state_problems(estate, tables["alarms"]),
        dead_letters=dead_letters,
        queued=queued,
        unpublished=tables["unpublished"],
        unsettled_deliveries=tables["unsettled"],
        partial_webhook_calls=partial_webhook_calls(webhooks),
    )
