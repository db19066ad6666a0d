"""The runs of `evaluations` in PostgreSQL (`005_evaluation_runs.sql`): finding the run each evaluation of a batch
may extend, extending it or starting one, and reading a run back as the evaluation of its last sighting."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.reporter.domain.sightings import content_hash
from shared.events import Evaluation

_S = '"reporter"'

#: For each `(target_key, at)` pair given, the run in force at `at`: its target's run first seen last at or before
#: then, locked so two replicas extending it count both sightings. One probe of `evaluations_target` per pair, in
#: the order given: pairs sorted by target key lock in one order, so two replicas' batches cannot deadlock.
RUNS_IN_FORCE = f"""
SELECT k.i, r.event_id, r.evaluated_at, r.content_hash
FROM unnest($1::text[], $2::timestamptz[]) WITH ORDINALITY AS k(target_key, at, i)
CROSS JOIN LATERAL (
    SELECT event_id, evaluated_at, content_hash FROM {_S}.evaluations e
    WHERE e.target_key = k.target_key AND e.evaluated_at <= k.at
    ORDER BY e.evaluated_at DESC LIMIT 1
    FOR UPDATE
) r
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


@dataclass(frozen=True, slots=True)
class StoredRun:
    """What choosing the run in force needs of a run: its id (the event id of its first sighting), when it was
    first seen, and its content hash (None: written before runs were, never extended)."""

    event_id: str
    evaluated_at: datetime
    digest: bytes | None


@dataclass(frozen=True, slots=True)
class RunChoice:
    """The run an evaluation belongs to, and whether the evaluation starts it (else it is a sighting of it)."""

    run: StoredRun
    starts: bool


async def runs_in_force(conn: asyncpg.Connection, evaluations: Sequence[Evaluation]) -> list[StoredRun | None]:
    """The stored run in force at each evaluation's time (None: its target has none then), each locked (in target
    key order) until the caller's transaction ends. One round trip."""
    pairs = sorted({(e.target_key, e.evaluated_at) for e in evaluations})
    rows = await conn.fetch(RUNS_IN_FORCE, [key for key, _ in pairs], [at for _, at in pairs])
    found = {pairs[r["i"] - 1]: StoredRun(r["event_id"], r["evaluated_at"], r["content_hash"]) for r in rows}
    return [found.get((e.target_key, e.evaluated_at)) for e in evaluations]


def choose_runs(evaluations: Sequence[tuple[str, Evaluation]], stored: Sequence[StoredRun | None]) -> list[RunChoice]:
    """The run of each `(event_id, evaluation)`, decided in order as storing them one by one would: the run in force
    at its time, the stored one (`stored[i]`, from `runs_in_force`) or one an evaluation before it in the list
    started, whichever was first seen last (a tie: the one stored first), extended if it says the same
    (`domain.sightings`), else a new run of its own."""
    started: dict[str, list[StoredRun]] = defaultdict(list)
    choices = []
    for (event_id, evaluation), in_store in zip(evaluations, stored, strict=True):
        digest, at = content_hash(evaluation), evaluation.evaluated_at
        known = [in_store] if in_store is not None else []
        candidates = [r for r in (*known, *started[evaluation.target_key]) if r.evaluated_at <= at]
        # `max` keeps the first of equals: the stored run, then the batch's in the order they started.
        in_force = max(candidates, key=lambda r: r.evaluated_at, default=None)
        if in_force is not None and in_force.digest == digest:
            choices.append(RunChoice(in_force, starts=False))
        else:
            run = StoredRun(event_id, at, digest)
            started[evaluation.target_key].append(run)
            choices.append(RunChoice(run, starts=True))
    return choices


def new_run_values(run: StoredRun, evaluation: Evaluation) -> tuple[Any, ...]:
    """The parameters of `NEW_RUN`: `run`, which `evaluation` starts."""
    return (
        run.event_id,
        evaluation.target_key,
        evaluation.certificate.fingerprint_sha256 if evaluation.certificate else None,
        evaluation.evaluated_at,
        evaluation.alarm.level,
        evaluation.security.grade if evaluation.security else None,
        evaluation.expiry.days_remaining if evaluation.expiry else None,
        evaluation.model_dump(mode="json"),
        run.digest,
    )


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
