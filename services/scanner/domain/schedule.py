"""When a target or a sweep is next due: one interval after its claim, plus a jitter fixed by its key.

No clock here: `now` is always an argument.
"""

import hashlib
from datetime import datetime, timedelta

#: Jitter is at most this fraction of the interval...
JITTER_FRACTION = 0.1
#: ...and never more than this, so a daily target is not pushed back by hours.
MAX_JITTER = timedelta(minutes=10)
#: A scan request not observed after its target's interval, and at least this long, counts as lost.
MIN_REQUEST_LEASE = timedelta(minutes=10)


def jitter(target_key: str, interval_seconds: int) -> timedelta:
    """A delay in [0, min(10% of the interval, 10 min)) that depends only on the target key.

    The same target always gets the same offset, so targets configured together drift apart once
    and then stay apart instead of all coming due in the same tick.
    """
    digest = hashlib.sha256(target_key.encode("utf-8")).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    spread = min(timedelta(seconds=interval_seconds * JITTER_FRACTION), MAX_JITTER)
    return spread * fraction


def next_due(target_key: str, interval_seconds: int, now: datetime) -> datetime:
    """When a target scanned (claimed) at `now` is due again: one interval later plus its jitter."""
    return now + timedelta(seconds=interval_seconds) + jitter(target_key, interval_seconds)


def request_lease(interval_seconds: int) -> timedelta:
    """How long a target's pending scan request holds off the next one: one interval, at least 10 minutes.

    A request still queued behind a backlog is not doubled; one that was lost (dead-lettered, its scanner killed)
    parks its target no longer than this.
    """
    return max(timedelta(seconds=interval_seconds), MIN_REQUEST_LEASE)


def sweep_next_due(sweep: str, interval_seconds: int, now: datetime) -> datetime:
    """When a discovery sweep claimed at `now` is due again: like a target, with a jitter keyed apart from any
    target's key."""
    return next_due(f"discovery:{sweep}", interval_seconds, now)
