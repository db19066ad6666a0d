"""How owners are told about an alarm event: which deliveries to make, their idempotency keys, and when a
failed one is tried again or given up. Pure: no I/O, no clock (`now` is an argument)."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.events import AlarmEvent, CloudEvent, OwnerRef

UNOWNED = "unowned"


class ChannelKind(StrEnum):
    """The channels a delivery can go over."""

    EMAIL = "email"
    SNMP = "snmp"
    WEBHOOK = "webhook"
    CONSOLE = "console"


@dataclass(frozen=True)
class Notice:
    """What every sender is given: the alarm event as published (its envelope) and its payload."""

    event: CloudEvent
    alarm: AlarmEvent

    @classmethod
    def of(cls, event: CloudEvent) -> "Notice":
        """The notice of an alarm event's envelope, its payload validated (as kept in the delivery log)."""
        return cls(event, AlarmEvent.model_validate(event.data))

    @property
    def event_id(self) -> str:
        """The alarm event's id (part of every idempotency key)."""
        return self.event.id


@dataclass(frozen=True)
class Delivery:
    """One message to one recipient over one channel: an address or a group of addresses (email), a receiver
    name (SNMP, webhook), or the owner's name (console)."""

    channel: ChannelKind
    recipients: tuple[str, ...]
    owner: str
    rule: str
    idempotency_key: str

    @property
    def recipient(self) -> str:
        """The recipient as the delivery log and `notification.*.v1` name it."""
        return ",".join(self.recipients)


def idempotency_key(alarm_event_id: str, channel: ChannelKind, recipient: str) -> str:
    """The key under which a delivery is recorded, so a redelivered alarm event never sends twice."""
    return f"{alarm_event_id}|{channel.value}|{recipient}"


def plan_deliveries(alarm: AlarmEvent, alarm_event_id: str, *, channels: Iterable[ChannelKind]) -> list[Delivery]:
    """The deliveries an alarm event calls for, given the channels that are configured.

    Email goes to each owner's addresses, all in one message (`group`) or one message per address
    (`individual`); SNMP and webhooks go to each receiver the owner lists. An owner who cannot be reached by
    any configured channel, and an alarm without any owner, is printed to the console so that nothing is
    silently dropped. A recipient reached through two owners gets one message.
    """
    available = set(channels)
    owners = alarm.owners or [OwnerRef(name=UNOWNED, rule="no owner matched")]
    planned: dict[str, Delivery] = {}
    for owner in owners:
        for delivery in _owner_deliveries(owner, alarm_event_id, available):
            planned.setdefault(delivery.idempotency_key, delivery)
    return list(planned.values())


def _owner_deliveries(owner: OwnerRef, alarm_event_id: str, available: set[ChannelKind]) -> Iterator[Delivery]:
    def make(channel: ChannelKind, recipients: tuple[str, ...]) -> Delivery:
        key = idempotency_key(alarm_event_id, channel, ",".join(recipients))
        return Delivery(channel, recipients, owner.name, owner.rule, key)

    reached = False
    addresses = tuple(dict.fromkeys(owner.email))  # keep order, drop repeats
    if ChannelKind.EMAIL in available and addresses:
        reached = True
        if owner.delivery == "individual":
            yield from (make(ChannelKind.EMAIL, (address,)) for address in addresses)
        else:
            yield make(ChannelKind.EMAIL, addresses)
    for channel, receivers in ((ChannelKind.SNMP, owner.snmp), (ChannelKind.WEBHOOK, owner.webhook)):
        if channel in available and receivers:
            reached = True
            yield from (make(channel, (name,)) for name in dict.fromkeys(receivers))
    if not reached:
        yield make(ChannelKind.CONSOLE, (owner.name,))


@dataclass(frozen=True)
class RetryPolicy:
    """How a transiently failing delivery is retried: `attempts` tries in process, then one try per round from
    the delivery log, the wait doubling from `base_delay` up to `max_delay`, until `give_up_after` seconds
    have passed since the first attempt."""

    attempts: int = 3
    base_delay: float = 2.0
    max_delay: float = 600.0
    give_up_after: float = 86400.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_delay < 0 or self.max_delay < 0 or self.give_up_after < 0:
            raise ValueError("a retry policy needs attempts ≥ 1 and non-negative delays")

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based, counting every round) before the next."""
        return float(min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))

    def next_attempt_at(self, *, first_attempt_at: datetime, now: datetime, attempts: int) -> datetime | None:
        """When to try again after `attempts` failed attempts, or None once `give_up_after` has run out.

        The last try is due when the time runs out rather than after it, so a long backoff does not overshoot it.
        """
        deadline = first_attempt_at + timedelta(seconds=self.give_up_after)
        if now >= deadline:
            return None
        return min(now + timedelta(seconds=self.delay_after(attempts)), deadline)
