"""The scanner's own metrics: scans by kind and outcome, how long they take, and how late the scheduler claims.

The labels are bounded on purpose: never a host, port or file (an estate has thousands), only the kind of scan
(`tls`, `starttls`, `file`), its profile and the class of error it ended in.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram

from shared.events import Observation, Target

SCANS = Counter(
    "certmon_scans",
    "Scans finished, by kind (tls, starttls, file) and outcome (ok or the class of error).",
    ["kind", "outcome"],
)
SCAN_DURATION = Histogram(
    "certmon_scan_duration_seconds",
    "How long a scan took, from its first probe to its observation, by kind and profile.",
    ["kind", "profile"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120),
)

#: A histogram rather than a gauge of the worst: every claimed target counts once, so no late claim between two
#: scrapes is lost, replicas add up, and the share claimed later than an SLO is a ratio of buckets. The
#: scheduler logs the worst of each tick (`scans_scheduled`).
SCHEDULE_LATENESS = Histogram(
    "certmon_schedule_lateness_seconds",
    "How long after its due time the scheduler claimed a target (waiting on a pending request included).",
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200),
)

KINDS = ("tls", "starttls", "file")
OUTCOMES = ("ok", "timeout", "refused", "dns", "tls", "protocol", "policy", "file")


def scan_kind(target: Target) -> str:
    """`file` for a certificate file, `starttls` for an endpoint spoken to in its protocol first, else `tls`."""
    if target.file is not None:
        return "file"
    return "tls" if target.protocol == "tls" else "starttls"


def start_series() -> None:
    """Start every scan series at zero (called once the scanner is wired), so rates exist before the first scan."""
    for kind in KINDS:
        for outcome in OUTCOMES:
            SCANS.labels(kind, outcome)


@contextmanager
def timed_scan(target: Target) -> Iterator[list[Observation]]:
    """Time the scan in the block and count it by the outcome of the observation the block appends."""
    result: list[Observation] = []
    started = time.perf_counter()
    yield result
    kind = scan_kind(target)
    SCAN_DURATION.labels(kind, "expiry" if target.file is not None else target.profile).observe(
        time.perf_counter() - started
    )
    error = result[0].error if result else None
    SCANS.labels(kind, "ok" if error is None else error.kind).inc()
