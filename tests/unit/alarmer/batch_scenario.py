"""A stream of evaluated events for the alarmer's batch tests and what handling it leaves in an alarm store, so
that the unit tests (in-memory store) and the integration tests (PostgreSQL) compare a batch with the same
messages one by one alike."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.alarmer.handlers import EvaluationHandler
from services.alarmer.ports import AlarmStore, HistoryEntry, StoredAlarm, TargetHealth
from shared.broker import Message
from shared.events import CloudEvent, Evaluation, make_event
from tests.support.alarms import WITHIN_7, WITHIN_30, evaluation, payloads, unreachable

BLOG, API, SHOP, INTRANET = "blog.example.com", "api.example.com", "www.shop.example.com", "intranet.example.com"
TARGETS = [f"{host}:443" for host in (BLOG, API, SHOP, INTRANET)]

#: The transitions the batch of `rounds` commits, in order: (transition, target, level).
BATCH_TRANSITIONS = [
    ("raised", f"{INTRANET}:443", "warning"),
    ("resolved", f"{BLOG}:443", "ok"),
    ("changed", f"{INTRANET}:443", "critical"),
    ("resolved", f"{SHOP}:443", "ok"),
    ("resolved", f"{INTRANET}:443", "ok"),
    ("changed", f"{API}:443", "critical"),
]


def evaluated(item: Evaluation) -> Message[Evaluation]:
    """The evaluation as the bus hands it over, in a new `certificate.evaluated.v1` envelope."""
    return Message(make_event("certificate.evaluated.v1", item, source="certmon/evaluator"), item)


def rounds() -> list[list[Message[Evaluation]]]:
    """Two deliveries: one that raises alarms on blog, api and shop, then a batch with every case a batch must get
    right (it commits `BATCH_TRANSITIONS`); a message handled twice, or a later evaluation of a target that did not
    see what an earlier one in the batch wrote, would change those. Each call builds new events, observed later
    than the last call's."""
    stale_api = evaluation(API, "a" * 64, WITHIN_7)  # observed before api's evaluation of the first round
    shop_down = evaluated(unreachable(SHOP))
    first = [evaluated(evaluation(host, "a" * 64, WITHIN_30)) for host in (BLOG, API)] + [shop_down]
    older_blog = evaluation(BLOG, "c" * 64, WITHIN_7)  # observed before the blog evaluation it follows in the batch
    intranet_down = evaluated(unreachable(INTRANET))
    batch = [
        shop_down,  # redelivered: handled in the first round (again, it would count a second failure)
        intranet_down,  # a first failure: reachability raised at warning
        evaluated(stale_api),  # stale: api was observed later already
        intranet_down,  # repeated within the batch
        evaluated(evaluation(BLOG, "b" * 64)),  # renewed: resolves blog's alarm of the first round
        evaluated(unreachable(INTRANET)),  # a second failure in a row: critical
        evaluated(evaluation(SHOP, "a" * 64)),  # reachable again: resolves shop's alarm of the first round
        evaluated(evaluation(INTRANET, "d" * 64)),  # reachable again: resolves what this batch raised
        evaluated(older_blog),  # stale: blog was observed later earlier in this batch
        evaluated(evaluation(API, "a" * 64, WITHIN_7)),  # worse: changes api's alarm of the first round
    ]
    return [first, batch]


async def one_by_one(handler: EvaluationHandler, deliveries: Sequence[Sequence[Message[Evaluation]]]) -> None:
    """Hand every message to the handler alone, in order."""
    for delivery in deliveries:
        for message in delivery:
            await handler(message)


async def in_batches(handler: EvaluationHandler, deliveries: Sequence[Sequence[Message[Evaluation]]]) -> None:
    """Hand each delivery to the handler as one batch."""
    for delivery in deliveries:
        await handler.handle_batch(delivery)


@dataclass(frozen=True)
class Outcome:
    """What handling left in a store: the alarm events queued (id, type and data, in order), the history of each
    of their alarms, each target's open alarms and health, and which event ids were not claimed yet."""

    events: list[tuple[str, str, Any]]
    history: dict[str, list[HistoryEntry]]
    open_alarms: dict[str, list[StoredAlarm]]
    health: dict[str, TargetHealth]
    unclaimed: list[bool]


async def outcome_of(
    store: AlarmStore, outbox: Sequence[CloudEvent], deliveries: Sequence[Sequence[Message[Evaluation]]]
) -> Outcome:
    """Read back the outcome of handling `deliveries` from `store`, whose committed alarm events are `outbox`."""
    alarm_ids = dict.fromkeys(payload.alarm_id for payload in payloads(list(outbox)))
    async with store.unit_of_work() as uow:
        return Outcome(
            events=[(event.id, event.type, event.data) for event in outbox],
            history={alarm_id: await uow.history(alarm_id) for alarm_id in alarm_ids},
            open_alarms={target: await uow.open_alarms(target) for target in TARGETS},
            health={target: await uow.lock_target_health(target) for target in TARGETS},
            unclaimed=await uow.claim_all(
                [message.event.id for delivery in deliveries for message in delivery], EvaluationHandler.consumer
            ),
        )
