"""Runs of unchanged evaluations: how the history keeps a target that is evaluated every hour and never changes.

An evaluation that says what the one in force before it said (same target, same content but for when it was
observed and evaluated, and the days remaining that follow from when) is a sighting of that evaluation, not a new
one. The history keeps one run per change: the evaluation as first seen, how many times it was seen, and the
volatile fields of its last sighting. What a run says about a moment between its first and last sightings reads
its sightings as evenly spaced (a target is scanned at its interval): exact for a regular schedule, within the
scheduler's jitter otherwise. The PostgreSQL history computes the same in SQL (`reporter.sighting_before`).

Pure: no clock, no I/O.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from shared.events import Evaluation

#: What changes from one sighting of an unchanged evaluation to the next, and so is left out of its content hash.
VOLATILE: dict[str, object] = {"observed_at": True, "evaluated_at": True, "expiry": {"days_remaining"}}


def content_hash(evaluation: Evaluation) -> bytes:
    """SHA-256 of the evaluation's JSON without its volatile fields (keys sorted): equal for two sightings of an
    unchanged evaluation, different as soon as anything else differs (level, grade, findings, chain, address...)."""
    content = evaluation.model_dump(mode="json", exclude=VOLATILE)  # type: ignore[arg-type]
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).digest()


@dataclass(frozen=True, slots=True)
class Run:
    """`count` sightings of one evaluation, the first at `first` and the last at `last` (evaluation times)."""

    first: datetime
    last: datetime
    count: int

    def sighting_before(self, moment: datetime) -> datetime | None:
        """The last sighting before `moment` (None if the run starts at or after it), the sightings read as evenly
        spaced from first to last."""
        if self.first >= moment:
            return None
        if self.last < moment:
            return self.last
        step = (self.last - self.first) / (self.count - 1)
        # The sightings are first + k * step; the last one before `moment` has the k below (moment - first) / step.
        k = -((self.first - moment) // step) - 1
        return self.first + k * step

    def seen_in(self, start: datetime, end: datetime) -> datetime | None:
        """The last sighting in `[start, end)`, or None."""
        seen = self.sighting_before(end)
        return seen if seen is not None and seen >= start else None
