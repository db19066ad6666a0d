"""The fault harness's books catch what they claim to: a lost, a doubled and an unexpected effect, a history
that does not read as one life, a target whose standing alarms are not those of its final certificate (pure:
no services run)."""

from collections import Counter
from pathlib import Path
from typing import Any

from tests.support.faults.books import (
    AlarmEventRecord,
    Recipients,
    Tally,
    delivered_webhooks,
    expected_deliveries,
    final_state_problems,
    history_problems,
    partial_webhook_calls,
)
from tests.support.faults.estate import Estate, Target
from tests.support.pki import make_ca, make_leaf
from tests.support.webhook_sink import Request, WebhookSink


def test_a_tally_names_each_lost_doubled_and_unexpected_effect() -> None:
    """Each identity is counted against how often it was expected."""
    tally = Tally.of(Counter({"a": 1, "b": 1, "c": 2}), Counter({"a": 1, "b": 3, "c": 1, "d": 1}))
    assert (tally.expected, tally.delivered) == (4, 6)
    assert tally.lost == ["'c'"]
    assert tally.duplicated == ["'b'", "'b'"]
    assert tally.unexpected == ["'d'"]


def row(transition: str, from_level: str | None, to_level: str, alarm_id: str = "a1") -> dict[str, Any]:
    """One `alarmer.alarm_history` row."""
    return {"alarm_id": alarm_id, "transition": transition, "from_level": from_level, "to_level": to_level}


def test_a_history_reads_as_one_life() -> None:
    """Raised once and first, levels that follow on, resolved once and last; anything else is named."""
    life = [
        row("raised", None, "warning"),
        row("changed", "warning", "critical"),
        row("reminded", None, "critical"),
        row("resolved", "critical", "ok"),
    ]
    assert history_problems(life) == []
    twice_raised = [row("raised", None, "warning"), row("raised", None, "warning")]
    assert "not raised exactly once" in history_problems(twice_raised)[0]
    changed_twice = [
        row("raised", None, "warning"),
        row("changed", "warning", "critical"),
        row("changed", "warning", "critical"),
    ]
    assert "does not follow on" in history_problems(changed_twice)[0]
    resolved_then_changed = [
        row("raised", None, "warning"),
        row("resolved", "warning", "ok"),
        row("changed", "ok", "critical"),
    ]
    assert "resolved other than once at the end" in history_problems(resolved_then_changed)[0]


def test_every_event_is_expected_once_per_recipient_of_each_channel() -> None:
    """Two addresses (one message each), one trap receiver, one webhook."""
    recipients = Recipients(emails=("a@x.test", "b@x.test"), snmp="noc", webhook="hook", from_address="c@x.test")
    events = [
        AlarmEventRecord("e1", "a1", "raised", "critical", None),
        AlarmEventRecord("e2", "a1", "resolved", "ok", "critical"),
    ]
    emails, traps, webhooks = expected_deliveries(events, recipients)
    assert sum(emails.values()) == 4 and len(emails) == 4  # a Message-ID per event and address
    assert traps == Counter({("a1", "certmonAlarmRaised", 1, 5): 1, ("a1", "certmonAlarmResolved", 4, 1): 1})
    assert webhooks == Counter({"e1": 1, "e2": 1})


def test_standing_alarms_must_be_those_of_the_final_certificate(tmp_path: Path) -> None:
    """A warning certificate leaves one open warning alarm on its fingerprint; an ok one, none."""
    ca = make_ca()
    target = Target("t", {state: make_leaf(ca) for state in ("critical", "warning", "ok")}, path=tmp_path / "t.pem")
    estate = Estate(tmp_path / "ca.pem", [target])
    target.state = "warning"
    standing = {"target_key": target.key, "fingerprint": target.fingerprint("warning"), "trigger": "expiry"}
    assert final_state_problems(estate, [{**standing, "level": "warning", "state": "open"}]) == []
    assert final_state_problems(estate, [{**standing, "level": "critical", "state": "open"}])
    assert final_state_problems(estate, [])
    target.state = "ok"
    assert final_state_problems(estate, [{**standing, "level": "warning", "state": "resolved"}]) == []


def test_a_webhook_call_cut_short_is_no_delivery() -> None:
    """A body cut short (its sender killed while sending) is counted apart, not as a delivery of anything."""
    sink = WebhookSink(port=0)
    sink.received += [Request("/hook", {}, b'{"id": "e1", "data": {}}'), Request("/hook", {}, b'{"id": "e2", "da')]
    assert delivered_webhooks(sink) == Counter({"e1": 1})
    assert partial_webhook_calls(sink) == 1
