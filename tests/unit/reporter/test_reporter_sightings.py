"""Runs of unchanged evaluations: what counts as unchanged, and which sighting a moment sees."""

from datetime import timedelta

from services.reporter.domain.sightings import Run, content_hash
from shared.events import Finding
from tests.unit.reporter.reporter_factories import NOW, evaluation

HOUR = timedelta(hours=1)


def test_two_sightings_differing_only_in_time_have_one_content_hash() -> None:
    """observed_at, evaluated_at and days_remaining are left out of the hash."""
    first = evaluation("a.example", days=30, evaluated_at=NOW)
    assert first.expiry is not None
    later = first.model_copy(
        update={
            "observed_at": NOW + HOUR,
            "evaluated_at": NOW + HOUR,
            "expiry": first.expiry.model_copy(update={"days_remaining": 29.9}),
        }
    )
    assert content_hash(later) == content_hash(first)


def test_any_other_difference_changes_the_content_hash() -> None:
    """Level, grade, findings, address, expiry status: each makes a different hash."""
    base = evaluation("a.example", days=30, evaluated_at=NOW)
    assert base.expiry is not None
    changed = [
        evaluation("a.example", days=30, evaluated_at=NOW, level="warning"),
        evaluation("a.example", days=30, evaluated_at=NOW, grade="B"),
        evaluation(
            "a.example",
            days=30,
            evaluated_at=NOW,
            findings=[Finding(code="tls.no_tls13", severity="notice", message="no TLS 1.3")],
        ),
        base.model_copy(update={"address": "192.0.2.1"}),
        base.model_copy(update={"expiry": base.expiry.model_copy(update={"status": "expiring_soon"})}),
    ]
    hashes = {content_hash(e) for e in changed}
    assert len(hashes) == len(changed) and content_hash(base) not in hashes


def test_a_moment_sees_the_last_sighting_before_it() -> None:
    """Hourly sightings: a moment between two sees the earlier, one on a sighting sees the one before it."""
    run = Run(NOW, NOW + 23 * HOUR, 24)
    assert run.sighting_before(NOW + 5.5 * HOUR) == NOW + 5 * HOUR
    assert run.sighting_before(NOW + 5 * HOUR) == NOW + 4 * HOUR
    assert run.sighting_before(NOW + 30 * HOUR) == NOW + 23 * HOUR
    assert run.sighting_before(NOW) is None


def test_a_run_seen_once_is_seen_at_its_only_sighting() -> None:
    """One sighting: every later moment sees it, no earlier one does."""
    run = Run(NOW, NOW, 1)
    assert run.sighting_before(NOW + HOUR) == NOW
    assert run.seen_in(NOW - HOUR, NOW) is None
    assert run.seen_in(NOW, NOW + HOUR) == NOW


def test_a_window_between_two_sightings_sees_none() -> None:
    """Sightings every two days: the day between them has none."""
    run = Run(NOW, NOW + 96 * HOUR, 3)
    assert run.seen_in(NOW + 24 * HOUR, NOW + 47 * HOUR) is None
    assert run.seen_in(NOW + 24 * HOUR, NOW + 49 * HOUR) == NOW + 48 * HOUR
