"""The CloudEvents 1.0 structured-JSON envelope and the routing-key registry."""

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.events.alarm import AcknowledgementRequested, AlarmEvent
from shared.events.evaluation import Evaluation
from shared.events.notification import NotificationResult
from shared.events.observation import Observation
from shared.events.report import ReportPublished
from shared.events.scan import ScanRequested

TYPE_PREFIX = "io.certmon."

#: Every routing key and the model of its `data`; the routing key carries the version.
ROUTING_KEYS: dict[str, type[BaseModel]] = {
    "scan.requested.v1": ScanRequested,
    "certificate.observed.v1": Observation,
    "certificate.evaluated.v1": Evaluation,
    "alarm.raised.v1": AlarmEvent,
    "alarm.changed.v1": AlarmEvent,
    "alarm.reminded.v1": AlarmEvent,
    "alarm.acknowledged.v1": AlarmEvent,
    "alarm.resolved.v1": AlarmEvent,
    "acknowledgement.requested.v1": AcknowledgementRequested,
    "notification.sent.v1": NotificationResult,
    "notification.failed.v1": NotificationResult,
    "report.published.v1": ReportPublished,
}

#: Announcements for whoever cares, with no consumer inside certmon: published without `mandatory`, so having
#: no subscriber is normal rather than an unroutable-message error. Pipeline events stay mandatory.
BROADCAST_KEYS: frozenset[str] = frozenset({"report.published.v1"})


class UnknownEventType(ValueError):
    """The event's type names no routing key this version knows."""


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope; `id` + `source` is the idempotency key."""

    model_config = ConfigDict(frozen=True, extra="allow")

    specversion: str = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    source: str
    type: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: str = "application/json"
    subject: str | None = None
    dataschema: str | None = None
    data: dict[str, Any]

    @property
    def routing_key(self) -> str:
        """`io.certmon.alarm.raised.v1` → `alarm.raised.v1`."""
        return self.type.removeprefix(TYPE_PREFIX)

    def payload(self) -> BaseModel:
        """The typed, validated payload for this event's routing key."""
        return payload_model(self.routing_key).model_validate(self.data)


def payload_model(routing_key: str) -> type[BaseModel]:
    """The model of a routing key's data, or UnknownEventType."""
    try:
        return ROUTING_KEYS[routing_key]
    except KeyError:
        raise UnknownEventType(routing_key) from None


def make_event(
    routing_key: str,
    data: BaseModel,
    *,
    source: str,
    subject: str | None = None,
    event_id: str | None = None,
) -> CloudEvent:
    """Wrap a payload in an envelope, checking that the model matches the routing key.

    Pass `event_id` derived from the consumed event's id (see `derived_id`) so that a redelivered input
    produces the same output id and consumers downstream drop the duplicate.
    """
    expected = payload_model(routing_key)
    if not isinstance(data, expected):
        raise TypeError(f"{routing_key} carries {expected.__name__}, not {type(data).__name__}")
    return CloudEvent(
        id=event_id or str(uuid.uuid4()),
        source=source,
        type=TYPE_PREFIX + routing_key,
        subject=subject,
        dataschema=f"https://certmon.dev/schemas/{routing_key}.json",
        data=data.model_dump(mode="json"),
    )


def derived_id(*parts: str) -> str:
    """A deterministic event id from the ids and keys it derives from (UUIDv5)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "certmon:" + "|".join(parts)))
