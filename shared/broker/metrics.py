"""What the consumers of both buses count, by queue and event type (the routing key, so the label stays bounded:
an event type this version does not know is counted as `other`).

`certmon_messages_consumed_total{queue,event_type,outcome}` counts each delivery by how it was settled: `acked`
(handled), `skipped` (no handler takes its routing key; acked), `rejected` (the handler failed: back to the queue,
the delivery limit counts it) or `dead_lettered` (a payload that cannot validate, or the last attempt the delivery
limit allows). `certmon_messages_redelivered_total` counts deliveries of a message delivered before.
"""

from prometheus_client import Counter

from shared.events import CloudEvent
from shared.events.envelope import ROUTING_KEYS

MESSAGES_CONSUMED = Counter(
    "certmon_messages_consumed",
    "Deliveries consumed, by queue, event type and how they were settled (acked, skipped, rejected, dead_lettered).",
    ["queue", "event_type", "outcome"],
)
MESSAGES_REDELIVERED = Counter(
    "certmon_messages_redelivered",
    "Deliveries of a message delivered before, by queue and event type.",
    ["queue", "event_type"],
)

OUTCOMES = ("acked", "skipped", "rejected", "dead_lettered")
MALFORMED = "malformed"


def event_type(event: CloudEvent | None) -> str:
    """The label of an event: its routing key if this version knows it, `malformed` for a body that is no
    CloudEvent, `other` for an unknown key (a label must not take whatever a publisher sends)."""
    if event is None:
        return MALFORMED
    return event.routing_key if event.routing_key in ROUTING_KEYS else "other"


def consumed(queue: str, event: CloudEvent | None, outcome: str, *, redelivered: bool) -> None:
    """Count one settled delivery."""
    label = event_type(event)
    MESSAGES_CONSUMED.labels(queue, label, outcome).inc()
    if redelivered:
        MESSAGES_REDELIVERED.labels(queue, label).inc()


def subscribed(queue: str, routing_keys: tuple[str, ...]) -> None:
    """Start a queue's series at zero for the event types it is bound to, so rates exist before the first event."""
    for key in routing_keys:
        if key in ROUTING_KEYS:
            for outcome in OUTCOMES:
                MESSAGES_CONSUMED.labels(queue, key, outcome)
            MESSAGES_REDELIVERED.labels(queue, key)
