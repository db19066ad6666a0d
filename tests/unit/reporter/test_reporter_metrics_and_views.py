"""Pure helpers behind `/metrics` labels and the alarms API view."""

from datetime import timedelta

from services.reporter.adapters.metric_labels import common_name, dnsnames_label
from services.reporter.adapters.metrics import exposition
from services.reporter.domain.views import NotificationRecord, alarm_views
from shared.events import Acknowledgement
from tests.unit.reporter.reporter_factories import NOW, alarm, evaluation


def test_common_name_reads_rfc4514_and_tolerates_junk() -> None:
    """The CN comes out of an RFC 4514 name, escaped commas included; a name without CN gives ""."""
    assert common_name("CN=shop.example.com,O=certmon tests") == "shop.example.com"
    assert common_name(r"O=Acme,CN=Acme\, Inc. CA") == "Acme, Inc. CA"
    assert common_name("O=no common name") == ""
    assert common_name("not a distinguished name") == ""


def test_dnsnames_label_matches_ssl_exporter() -> None:
    """DNS names are joined with commas and framed by commas; IP addresses are left out; none gives ""."""
    assert dnsnames_label(["a.example", "b.example", "192.0.2.1", "2001:db8::1"]) == ",a.example,b.example,"
    assert dnsnames_label([]) == ""


def test_metrics_drop_series_of_targets_that_went_away() -> None:
    """Each scrape reflects only the evaluations it was given."""
    first = exposition([evaluation("a.example", days=3), evaluation("b.example", days=9)], now=NOW).decode()
    assert 'target="b.example:443"' in first
    second = exposition([evaluation("a.example", days=3)], now=NOW).decode()
    assert 'target="b.example:443"' not in second
    assert 'certmon_certificates{level="ok"} 1\n' in second


def test_alarm_view_follows_the_latest_transition() -> None:
    """An alarm raised then resolved is resolved, keeps both steps, and lists its notifications in time order."""
    events = [
        ("e2", alarm("a1", "resolved", "ok", NOW)),
        ("e1", alarm("a1", "raised", "critical", NOW - timedelta(hours=3))),
    ]
    sent = NotificationRecord(
        alarm_id="a1", alarm_event_id="e1", channel="email", recipient="x@example.com", ok=True, attempt=1, at=NOW
    )
    [view] = alarm_views(events, [sent])
    assert (view.state, view.level) == ("resolved", "ok")
    assert [h.event_id for h in view.history] == ["e1", "e2"]
    assert view.raised_at == NOW - timedelta(hours=3)
    assert view.notifications == [sent]


def test_alarm_view_takes_state_acknowledgement_and_reminders_from_the_latest_event() -> None:
    """The latest event's state, acknowledgement, reminder count and next reminder make the view; each step keeps
    its cause, and the certificate seen before a resolve stays on the view."""
    ack = Acknowledgement(by="jane@example.com", at=NOW, comment="renewal ordered", via="link")
    raised = alarm("a1", "raised", "critical", NOW - timedelta(days=2))
    with_certificate = raised.model_copy(update={"certificate": evaluation("a.example", days=3).certificate})
    reminded = alarm("a1", "reminded", "critical", NOW - timedelta(days=1), cause="reminder schedule").model_copy(
        update={"reminders_sent": 1, "next_reminder_at": NOW + timedelta(hours=1)}
    )
    acknowledged = alarm("a1", "acknowledged", "critical", NOW, acknowledgement=ack, cause=ack.by).model_copy(
        update={"reminders_sent": 1}
    )
    [view] = alarm_views([("e1", with_certificate), ("e2", reminded), ("e3", acknowledged)], [])
    assert (view.state, view.acknowledgement, view.reminders_sent, view.next_reminder_at) == (
        "acknowledged",
        ack,
        1,
        None,
    )
    assert [(h.transition, h.state, h.cause) for h in view.history] == [
        ("raised", "open", None),
        ("reminded", "open", "reminder schedule"),
        ("acknowledged", "acknowledged", "jane@example.com"),
    ]
    assert view.certificate is not None and view.certificate.subject == "CN=a.example"
    [reminding] = alarm_views([("e1", raised), ("e2", reminded)], [])
    assert (reminding.state, reminding.reminders_sent, reminding.next_reminder_at) == (
        "open",
        1,
        NOW + timedelta(hours=1),
    )
