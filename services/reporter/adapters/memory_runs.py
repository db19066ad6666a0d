"""The in-memory twin's evaluations: runs of unchanged sightings (`domain.sightings`), kept and read as the
PostgreSQL history keeps and reads the rows of `evaluations` (`adapters.runs`, `report_queries`, `dashboard_sql`).
"""

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from services.reporter.domain.estate import ObservationRow
from services.reporter.domain.facts import DayLevels, TargetFacts, facts_of
from services.reporter.domain.sightings import Run, content_hash
from shared.events import Evaluation


@dataclass
class EvaluationRun:
    """An evaluation as first seen, as last seen, and how many times it was seen in between and including."""

    first: Evaluation
    last: Evaluation
    count: int
    digest: bytes

    @property
    def run(self) -> Run:
        """The run's sighting times."""
        return Run(self.first.evaluated_at, self.last.evaluated_at, self.count)

    @property
    def fingerprint(self) -> str | None:
        """The leaf's fingerprint, if the evaluation has a certificate."""
        return self.first.certificate.fingerprint_sha256 if self.first.certificate else None


class EvaluationRuns:
    """Every run, in the order they were started."""

    def __init__(self) -> None:
        self.runs: list[EvaluationRun] = []

    def record(self, evaluation: Evaluation) -> None:
        """A sighting of the target's run in force at the evaluation's time if it says the same, else a new run."""
        digest = content_hash(evaluation)
        in_force = [
            r
            for r in self.runs
            if r.first.target_key == evaluation.target_key and r.first.evaluated_at <= evaluation.evaluated_at
        ]
        run = max(in_force, key=lambda r: r.first.evaluated_at, default=None)
        if run is None or run.digest != digest:
            self.runs.append(EvaluationRun(evaluation, evaluation, 1, digest))
            return
        run.count += 1
        if evaluation.evaluated_at > run.last.evaluated_at:
            run.last = evaluation

    def prune(self, before: datetime, keep: set[str]) -> int:
        """Forget runs last seen before `before`, but the latest run of each target in `keep`; returns how many
        went."""
        latest: dict[str, EvaluationRun] = {}
        for r in self.runs:
            key = r.first.target_key
            if key in keep and (key not in latest or latest[key].first.evaluated_at <= r.first.evaluated_at):
                latest[key] = r
        kept = [r for r in self.runs if r.last.evaluated_at >= before or latest.get(r.first.target_key) is r]
        gone, self.runs = len(self.runs) - len(kept), kept
        return gone

    def of_certificate(self, fingerprint: str) -> list[EvaluationRun]:
        """The runs of one certificate, by first sighting."""
        return sorted((r for r in self.runs if r.fingerprint == fingerprint), key=lambda r: r.first.evaluated_at)

    def estate(self, as_of: datetime, *, since: datetime) -> list[TargetFacts]:
        """See `HistoryStore.estate`: each target's run in force before `as_of`, if seen since `since`."""
        in_force: dict[str, EvaluationRun] = {}
        for r in self.runs:
            current = in_force.get(r.first.target_key)
            if r.first.evaluated_at < as_of and (current is None or current.first.evaluated_at <= r.first.evaluated_at):
                in_force[r.first.target_key] = r
        chosen = []
        for _, r in sorted(in_force.items()):
            seen = r.run.seen_in(since, as_of)
            if seen is not None:
                chosen.append(dataclasses.replace(facts_of(r.first), evaluated_at=seen))
        return chosen

    def first_seen(self, start: datetime, end: datetime) -> list[TargetFacts]:
        """See `HistoryStore.first_seen`: the first sighting of each certificate's first run."""
        first: dict[str, Evaluation] = {}
        for r in self.runs:
            fingerprint = r.fingerprint
            if fingerprint is not None and (
                fingerprint not in first or r.first.evaluated_at < first[fingerprint].evaluated_at
            ):
                first[fingerprint] = r.first
        return [facts_of(e) for _, e in sorted(first.items()) if start <= e.evaluated_at < end]

    def daily_levels(self, start: datetime, end: datetime) -> list[DayLevels]:
        """See `HistoryStore.daily_levels`: each run on each UTC day one of its sightings falls on."""
        last: dict[tuple[date, str], tuple[datetime, str]] = {}
        for r in self.runs:
            for day in _days(max(r.first.evaluated_at, start), min(r.last.evaluated_at, end)):
                day_start = datetime.combine(day, time(), UTC)
                seen = r.run.seen_in(max(day_start, start), min(day_start + timedelta(days=1), end))
                slot = (day, r.first.target_key)
                if seen is not None and (slot not in last or last[slot][0] <= seen):
                    last[slot] = (seen, r.first.alarm.level)
        counts: dict[date, Counter[str]] = defaultdict(Counter)
        for (day, _), (_, level) in last.items():
            counts[day][level] += 1
        return [DayLevels(day=day, counts=dict(counts[day])) for day in sorted(counts)]

    def observations_of(self, fingerprint: str, *, limit: int, changes_only: bool) -> list[ObservationRow]:
        """See `HistoryStore.observations_of`: each run at its last sighting, or each change at its first."""
        rows: list[ObservationRow] = []
        before: dict[str, str] = {}
        for r in self.of_certificate(fingerprint):
            key, level = r.first.target_key, r.first.alarm.level
            if not changes_only:
                rows.append(_observation(r.last, r))
            elif before.get(key) != level:
                rows.append(_observation(r.first, r))
            before[key] = level
        return sorted(rows, key=lambda o: (o.evaluated_at, o.target_key), reverse=True)[:limit]


def _days(start: datetime, end: datetime) -> Iterable[date]:
    """The UTC days from `start`'s to `end`'s, both included (none if `end` is before `start`)."""
    day, last = start.astimezone(UTC).date(), end.astimezone(UTC).date()
    while day <= last:
        yield day
        day += timedelta(days=1)


def _observation(seen: Evaluation, r: EvaluationRun) -> ObservationRow:
    return ObservationRow(
        evaluated_at=seen.evaluated_at,
        target_key=seen.target_key,
        level=seen.alarm.level,
        grade=seen.security.grade if seen.security else None,
        days_remaining=seen.expiry.days_remaining if seen.expiry else None,
        reachable=seen.reachable,
        first_seen_at=r.first.evaluated_at,
        seen_count=r.count,
    )
