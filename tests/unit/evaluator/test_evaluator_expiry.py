"""Expiry: fractional days, status, renewal window and the single expiry finding, one second either side."""

import datetime as dt

import pytest

from services.evaluator.domain.expiry import evaluate_expiry
from services.evaluator.domain.parse import ParsedCert
from shared.config import Policy
from tests.support.pki import NOW, Issued, make_leaf
from tests.unit.evaluator.evaluator_support import parsed_cert

SECOND = dt.timedelta(seconds=1)
DAY = dt.timedelta(days=1)
NOT_AFTER = NOW + dt.timedelta(days=400)


@pytest.fixture(scope="module")
def expiring(intermediate: Issued) -> ParsedCert:
    """A leaf valid from 10 days before NOW until NOT_AFTER."""
    return parsed_cert(make_leaf(intermediate, not_before=NOW - 10 * DAY, not_after=NOT_AFTER))


def _at(leaf: ParsedCert, now: dt.datetime, policy: Policy | None = None) -> tuple[str, str, str | None, float]:
    result = evaluate_expiry(leaf, now=now, policy=policy or Policy())
    code = result.finding.code if result.finding else None
    return result.info.status, result.info.renewal_window, code, result.info.days_remaining


def test_ninety_day_boundary_one_second_either_side(expiring: ParsedCert) -> None:
    """90 days left or a second less is info (renewal should be initiated); a second more is nothing (plan)."""
    assert _at(expiring, NOT_AFTER - 90 * DAY + SECOND)[:3] == ("valid", "initiate", "expiry.within_90_days")
    assert _at(expiring, NOT_AFTER - 90 * DAY)[:3] == ("valid", "initiate", "expiry.within_90_days")
    assert _at(expiring, NOT_AFTER - 90 * DAY - SECOND)[:3] == ("valid", "plan", None)


def test_thirty_day_boundary_one_second_either_side(expiring: ParsedCert) -> None:
    """Exactly at 30 days left is a warning (≤ 30); one second more left is still only info."""
    assert _at(expiring, NOT_AFTER - 30 * DAY)[:3] == ("expiring_soon", "urgent", "expiry.within_30_days")
    assert _at(expiring, NOT_AFTER - 30 * DAY + SECOND)[:3] == ("expiring_soon", "urgent", "expiry.within_30_days")
    assert _at(expiring, NOT_AFTER - 30 * DAY - SECOND)[:3] == ("valid", "initiate", "expiry.within_90_days")


def test_seven_day_boundary_one_second_either_side(expiring: ParsedCert) -> None:
    """Seven days left is critical; seven days and a second is a warning."""
    assert _at(expiring, NOT_AFTER - 7 * DAY + SECOND)[:3] == ("expiring_soon", "critical", "expiry.within_7_days")
    assert _at(expiring, NOT_AFTER - 7 * DAY)[:3] == ("expiring_soon", "critical", "expiry.within_7_days")
    assert _at(expiring, NOT_AFTER - 7 * DAY - SECOND)[:3] == ("expiring_soon", "urgent", "expiry.within_30_days")


def test_zero_boundary_one_second_either_side(expiring: ParsedCert) -> None:
    """A second before notAfter it is still valid (critical window); a second after, it has expired."""
    status, window, code, days = _at(expiring, NOT_AFTER - SECOND)
    assert (status, window, code) == ("expiring_soon", "critical", "expiry.within_7_days")
    assert days == pytest.approx(1 / 86400, abs=1e-6)
    status, window, code, days = _at(expiring, NOT_AFTER + SECOND)
    assert (status, window, code) == ("expired", "expired", "expiry.expired")
    assert days == pytest.approx(-1 / 86400, abs=1e-6)


def test_days_remaining_is_fractional(expiring: ParsedCert) -> None:
    """Twelve hours before expiry is half a day."""
    assert _at(expiring, NOT_AFTER - dt.timedelta(hours=12))[3] == pytest.approx(0.5)


def test_not_yet_valid_one_second_before_not_before(expiring: ParsedCert) -> None:
    """One second before notBefore the certificate is not yet valid; at notBefore it is."""
    assert _at(expiring, expiring.not_before - SECOND)[0::2] == ("not_yet_valid", "expiry.not_yet_valid")
    assert _at(expiring, expiring.not_before)[0] == "valid"


def test_non_utc_now_is_the_same_instant(expiring: ParsedCert) -> None:
    """A tz-aware `now` in UTC+05:30 is judged as the instant it denotes, not its wall-clock time."""
    india = dt.timezone(dt.timedelta(hours=5, minutes=30))
    just_after = (NOT_AFTER + SECOND).astimezone(india)
    just_before = (NOT_AFTER - SECOND).astimezone(india)
    assert just_after.hour != (NOT_AFTER + SECOND).hour  # the wall clock differs; the instant does not
    assert _at(expiring, just_after)[0] == "expired"
    assert _at(expiring, just_before)[0] == "expiring_soon"
    assert _at(expiring, just_before)[3] == pytest.approx(1 / 86400, abs=1e-6)


def test_policy_thresholds_move_the_boundaries(expiring: ParsedCert) -> None:
    """With warning_days 45, 40 days left is a warning and the renewal window is urgent."""
    policy = Policy(warning_days=45)
    status, window, code, _ = _at(expiring, NOT_AFTER - 40 * DAY, policy)
    assert (status, window, code) == ("expiring_soon", "urgent", "expiry.within_30_days")
    assert _at(expiring, NOT_AFTER - 40 * DAY)[:3] == ("valid", "initiate", "expiry.within_90_days")
