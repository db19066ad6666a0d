"""The runs of `evaluations` in PostgreSQL (`005_evaluation_runs.sql`): finding the run an evaluation may extend,
extending it or starting one, and reading a run back as the evaluation of its last sighting."""

from datetime import datetime
from typing import Any

import asyncpg

from shared.events import Evaluation

_S = '"reporter"'

#: The run in force when the evaluation was made: its target's run first seen last at or before then, locked so
#: two replicas extending it count both sightings. One probe of `evaluations_target`.
RUN_IN_FORCE = f"""
SELECT event_id, content_hash FROM {_S}.evaluations
WHERE target_key = $1 AND evaluated_at <= $2
ORDER BY evaluated_at DESC LIMIT 1
FOR UPDATE
"""

#: One more sighting of run `$1`; the last sighting's fields move only if this one is later (an evaluation
#: that arrives late is counted, but does not take the run back in time).
SEEN_AGAIN = f"""
UPDATE {_S}.evaluations SET
    seen_count = seen_count + 1,
    last_observed_at = CASE WHEN $2 > coalesce(last_seen_at, evaluated_at) THEN $3 ELSE last_observed_at END,
    last_days_remaining = CASE WHEN $2 > coalesce(last_seen_at, evaluated_at) THEN $4 ELSE last_days_remaining END,
    last_seen_at = greatest(coalesce(last_seen_at, evaluated_at), $2)
WHERE event_id = $1
"""

NEW_RUN = f"""
INSERT INTO {_S}.evaluations (event_id, target_key, fingerprint, evaluated_at, level, grade, days_remaining,
                              evaluation, content_hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (event_id) DO NOTHING
"""

#: The columns `as_last_seen` reads, of `evaluations e`.
LAST_SEEN_COLUMNS = "e.evaluation, e.last_seen_at, e.last_observed_at, e.last_days_remaining"


def last_sighting(evaluation: Evaluation) -> tuple[datetime, datetime, float | None]:
    """The parameters `$2..$4` of `SEEN_AGAIN`: when `evaluation` was evaluated and observed, its days remaining."""
    days = evaluation.expiry.days_remaining if evaluation.expiry else None
    return evaluation.evaluated_at, evaluation.observed_at, days


def as_last_seen(row: asyncpg.Record) -> Evaluation:
    """The evaluation of a run's last sighting: as first seen, with the last sighting's volatile fields."""
    stored: dict[str, Any] = row["evaluation"]
    if row["last_seen_at"] is not None:
        stored["evaluated_at"] = row["last_seen_at"].isoformat()
        stored["observed_at"] = row["last_observed_at"].isoformat()
        if stored.get("expiry") is not None:
            stored["expiry"]["days_remaining"] = row["last_days_remaining"]
    return Evaluation.model_validate(stored)
