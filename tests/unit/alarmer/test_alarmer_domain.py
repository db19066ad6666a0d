"""The alarm state machine: raise, change, resolve, renewal and reachability, decided from evaluations alone."""

from datetime import UTC, datetime, timedelta

from services.alarmer.domain.alarms import (
    NO_CERTIFICATE,
    Decision,
    OpenAlarm,
    consecutive_failures,
    decide,
    trigger_of,
)
from shared.events import AlarmKey, AlarmSummary, CertificateInfo, Evaluation, Finding, KeyInfo, TargetRef
from shared.events.evaluation import Level, Trigger, level_of
from tests.support.alarms import finding, unreachable

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SHOP = "shop.example.com"
TARGET = f"{SHOP}:443"
OLD = "a" * 64
NEW = "b" * 64


def certificate(fingerprint: str) -> CertificateInfo:
    """A leaf certificate's facts with the given fingerprint."""
    return CertificateInfo(
        fingerprint_sha256=fingerprint,
        subject="CN=shop.example.com",
        issuer="CN=Example CA",
        serial="01",
        not_before=NOW - timedelta(days=60),
        not_after=NOW + timedelta(days=20),
        san=["shop.example.com"],
        key=KeyInfo(type="EC", bits=256, curve="secp256r1"),
        signature_algorithm="ecdsa-with-SHA256",
    )


def evaluated(fingerprint: str, *findings: Finding) -> Evaluation:
    """An evaluation of a reachable target serving the certificate `fingerprint`."""
    return Evaluation(
        target=TargetRef(host="shop.example.com", port=443, sni="shop.example.com"),
        target_key=TARGET,
        observed_at=NOW,
        evaluated_at=NOW,
        reachable=True,
        certificate=certificate(fingerprint),
        findings=list(findings),
        alarm=AlarmSummary(level="ok"),
    )


def key(fingerprint: str, trigger: Trigger) -> AlarmKey:
    """An alarm key on the test target."""
    return AlarmKey(target_key=TARGET, fingerprint_sha256=fingerprint, trigger=trigger)


def open_alarm(fingerprint: str, trigger: Trigger, level: Level, alarm_id: str = "alarm-1") -> OpenAlarm:
    """An alarm open on the test target."""
    return OpenAlarm(alarm_id=alarm_id, key=key(fingerprint, trigger), level=level)


def run(open_alarms: list[OpenAlarm], evaluation: Evaluation, failures: int = 0) -> list[Decision]:
    """Decide with the default reachability escalation (critical from the third failure)."""
    return decide(open_alarms, evaluation, failures=failures, unreachable_critical_after=3)


WITHIN_30 = finding("expiry.within_30_days", "warning", "expiry")
WITHIN_7 = finding("expiry.within_7_days", "critical", "expiry")


def test_first_warning_raises_an_alarm() -> None:
    """A warning on a key with no open alarm raises one at warning, with the trigger's findings."""
    decisions = run([], evaluated(OLD, WITHIN_30))
    assert decisions == [Decision("raised", key(OLD, "expiry"), "warning", None, (WITHIN_30,))]


def test_same_level_again_decides_nothing() -> None:
    """An open alarm that is still at its level has no transition."""
    assert run([open_alarm(OLD, "expiry", "warning")], evaluated(OLD, WITHIN_30)) == []


def test_warning_to_critical_changes_with_the_previous_level() -> None:
    """A level that moves changes the alarm and says where it came from."""
    decisions = run([open_alarm(OLD, "expiry", "warning")], evaluated(OLD, WITHIN_7))
    assert decisions == [Decision("changed", key(OLD, "expiry"), "critical", "warning", (WITHIN_7,), "alarm-1")]


def test_back_to_ok_resolves() -> None:
    """An open alarm whose trigger has no finding above notice any more is resolved."""
    decisions = run([open_alarm(OLD, "expiry", "critical")], evaluated(OLD))
    assert decisions == [Decision("resolved", key(OLD, "expiry"), "ok", "critical", (), "alarm-1")]


def test_renewed_certificate_resolves_the_old_fingerprints_alarms() -> None:
    """Serving a different, healthy certificate resolves every alarm of the one it replaced."""
    alarms = [open_alarm(OLD, "expiry", "critical", "a1"), open_alarm(OLD, "chain", "warning", "a2")]
    decisions = run(alarms, evaluated(NEW))
    assert [(d.transition, d.key, d.level, d.previous_level, d.alarm_id) for d in decisions] == [
        ("resolved", key(OLD, "expiry"), "ok", "critical", "a1"),
        ("resolved", key(OLD, "chain"), "ok", "warning", "a2"),
    ]


def test_renewed_certificate_with_its_own_problem_opens_a_new_alarm() -> None:
    """The new certificate's findings raise on its own key while the old certificate's alarm resolves."""
    decisions = run([open_alarm(OLD, "expiry", "critical")], evaluated(NEW, WITHIN_30))
    assert [(d.transition, d.key) for d in decisions] == [
        ("resolved", key(OLD, "expiry")),
        ("raised", key(NEW, "expiry")),
    ]


def test_unreachable_does_not_resolve_the_certificates_alarms() -> None:
    """No certificate is unknown, not ok: the certificate's alarm stays and a reachability alarm is raised."""
    decisions = run([open_alarm(OLD, "expiry", "critical")], unreachable(SHOP), failures=1)
    assert decisions == [
        Decision("raised", key(NO_CERTIFICATE, "reachability"), "warning", None, tuple(unreachable(SHOP).findings))
    ]


def test_unreachable_becomes_critical_after_consecutive_failures() -> None:
    """The reachability alarm stays at warning for two failures and changes to critical at the third."""
    second = run([open_alarm(NO_CERTIFICATE, "reachability", "warning")], unreachable(SHOP), failures=2)
    third = run([open_alarm(NO_CERTIFICATE, "reachability", "warning")], unreachable(SHOP), failures=3)
    assert second == []
    assert [(d.transition, d.level, d.previous_level) for d in third] == [("changed", "critical", "warning")]


def test_reachable_again_resolves_the_reachability_alarm() -> None:
    """A certificate observed again resolves the reachability alarm and leaves a still-valid alarm alone."""
    alarms = [open_alarm(NO_CERTIFICATE, "reachability", "critical", "r1"), open_alarm(OLD, "expiry", "warning")]
    decisions = run(alarms, evaluated(OLD, WITHIN_30))
    assert [(d.transition, d.key, d.alarm_id) for d in decisions] == [
        ("resolved", key(NO_CERTIFICATE, "reachability"), "r1")
    ]


def test_consecutive_failures_count_up_and_reset_on_success() -> None:
    """Each unobserved evaluation lengthens the run; an observed certificate ends it."""
    assert consecutive_failures(2, unreachable(SHOP)) == 3
    assert consecutive_failures(2, evaluated(OLD)) == 0


def test_several_triggers_give_several_alarms() -> None:
    """Findings of different triggers raise one alarm per trigger, each at its own level."""
    weak = finding("cipher.weak", "warning", "security")
    incomplete = finding("chain.incomplete", "critical", "chain")
    decisions = run([], evaluated(OLD, WITHIN_7, weak, incomplete))
    assert [(d.transition, d.key.trigger, d.level, d.findings) for d in decisions] == [
        ("raised", "expiry", "critical", (WITHIN_7,)),
        ("raised", "security", "warning", (weak,)),
        ("raised", "chain", "critical", (incomplete,)),
    ]


def test_notice_only_findings_raise_nothing() -> None:
    """Notice findings are shown but never alarm."""
    decisions = run([], evaluated(OLD, finding("tls.no_tls13", "notice", "security")))
    assert decisions == []


def test_level_is_the_most_severe_finding_above_notice() -> None:
    """Info, warning and critical findings of one trigger make the trigger critical; notices count for nothing."""
    findings = [
        finding("chain.contains_root", "notice", "chain"),
        finding("chain.wrong_order", "warning", "chain"),
        finding("chain.incomplete", "critical", "chain"),
    ]
    assert level_of(findings) == "critical"
    assert level_of(findings[:1]) == "ok"
    assert level_of([finding("expiry.within_90_days", "info", "expiry")]) == "info"


def test_finding_without_trigger_is_grouped_by_its_code() -> None:
    """A finding from a producer that left `trigger` empty is grouped by its code's prefix."""
    assert trigger_of(finding("expiry.expired", "critical", None)) == "expiry"
    assert trigger_of(finding("endpoint.unreachable", "warning", None)) == "reachability"
    assert trigger_of(finding("hostname.mismatch", "critical", None)) == "validity"


def test_alarms_of_other_targets_are_left_alone() -> None:
    """An open alarm of another target is never resolved by this target's evaluation."""
    other = OpenAlarm("x", AlarmKey(target_key="other:443", fingerprint_sha256=OLD, trigger="expiry"), "critical")
    assert run([other], evaluated(NEW)) == []
