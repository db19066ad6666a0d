"""Rendering notifications: subject lines, text and HTML bodies for every transition, acknowledge and view
links, user overrides checked at start, hostile input."""

import io
from datetime import timedelta

import pytest

from services.notifier.adapters.console import ConsoleSender
from services.notifier.adapters.rendering import AckLinks, Renderer, RenderError, days_phrase, subject_line
from services.notifier.domain.deliveries import ChannelKind, Notice, plan_deliveries
from shared.action_links import ActionLinkSigner
from shared.events import Acknowledgement, TargetRef, make_event
from shared.settings import RuntimeConfigError
from tests.support.alarms import FINGERPRINT, NOW

HOSTILE = "CN=<script>alert('x')</script>"
SIGNER = ActionLinkSigner(b"link-key-for-the-notifier-tests")
LINKS = AckLinks(SIGNER, public_url="https://certmon.example.com/", expires_seconds=86400, clock=lambda: NOW)


def notice_of(alarm):
    """The alarm as the alarmer publishes it, as senders are given it."""
    return Notice(make_event(f"alarm.{alarm.transition}.v1", alarm, source="certmon/alarmer", event_id="ev-1"), alarm)


def render(alarm, templates_dir=None, *, links=None):
    """Render the first delivery of an alarm with the packaged (or given) templates, with `links` if given."""
    delivery = plan_deliveries(alarm, "ev-1", channels=(ChannelKind.EMAIL, ChannelKind.CONSOLE))[0]
    renderer = Renderer(public_url="https://certmon.example.com/", templates_dir=templates_dir)
    notice = notice_of(alarm)
    return renderer.render(notice, delivery, ack_url=links.url_for(notice, delivery) if links else None)


def test_subject_of_raised_expiry_alarm(make_alarm):
    """The subject names level, transition, target and whole days remaining."""
    assert subject_line(make_alarm()) == "[certmon] CRITICAL raised: shop.example.com:443 expires in 5 days"


def test_subject_of_changed_alarm_names_previous_level(make_alarm):
    """A changed alarm says where the level came from."""
    alarm = make_alarm(transition="changed", level="critical", previous_level="warning", days_remaining=1.5)
    assert subject_line(alarm) == "[certmon] CRITICAL changed from WARNING: shop.example.com:443 expires in 1 day"


def test_subject_of_resolved_alarm(make_alarm):
    """A resolved alarm says it is over and what it was."""
    alarm = make_alarm(transition="resolved", level="ok", previous_level="critical")
    assert subject_line(alarm) == "[certmon] OK resolved: shop.example.com:443 (was CRITICAL)"


def test_subject_and_bodies_of_a_reminder_say_it_is_one(make_alarm):
    """A reminder says REMINDER, that the alarm is still open, and which reminder it is."""
    alarm = make_alarm(transition="reminded", reminders_sent=2)
    assert subject_line(alarm) == (
        "[certmon] REMINDER: CRITICAL alarm on shop.example.com:443 still open (expires in 5 days), reminder 2"
    )
    message = render(alarm)
    assert "REMINDER: the CRITICAL alarm on shop.example.com:443 is still open" in message.text
    assert "(reminder 2)" in message.text and "(reminder 2)" in message.html


def test_subject_and_bodies_of_an_acknowledgement_name_who_and_why(make_alarm):
    """An acknowledgement names who acknowledged the alarm and their comment."""
    ack = Acknowledgement(by="alice@example.com", at=NOW, comment="renewal ordered", via="link")
    alarm = make_alarm(transition="acknowledged", state="acknowledged", acknowledgement=ack)
    assert subject_line(alarm) == (
        "[certmon] CRITICAL on shop.example.com:443 acknowledged by alice@example.com: renewal ordered"
    )
    message = render(alarm, links=LINKS)
    assert "acknowledged by alice@example.com: renewal ordered" in message.text
    assert "acknowledged by alice@example.com: renewal ordered" in message.html
    assert "/ack/" not in message.text and "/ack/" not in message.html


@pytest.mark.parametrize("transition", ["raised", "changed", "reminded"])
def test_open_alarm_email_has_a_signed_acknowledge_link_for_its_recipient(make_alarm, transition):
    """Raised, changed and reminder emails link to /ack/{token}, signed for the alarm and the recipient, valid
    for ack_link_expires, in text and HTML."""
    message = render(make_alarm(transition=transition, previous_level="warning"), links=LINKS)
    prefix = "https://certmon.example.com/ack/"
    token = message.text.split(prefix, 1)[1].split()[0]
    assert f'href="{prefix}{token}"' in message.html
    link = SIGNER.verify(token, now=NOW)
    assert (link.alarm_id, link.recipient, link.expires_at) == ("alarm-1", "alice@example.com", NOW + timedelta(days=1))


def test_resolved_alarm_offers_no_acknowledge_link(make_alarm):
    """There is nothing to acknowledge on a resolved alarm."""
    message = render(make_alarm(transition="resolved", level="ok", state="resolved"), links=LINKS)
    assert "/ack/" not in message.text and "/ack/" not in message.html


def test_subject_of_non_expiry_trigger_names_the_problem(make_alarm):
    """A chain alarm does not talk about days remaining."""
    alarm = make_alarm(key=make_alarm().key.model_copy(update={"trigger": "chain"}), days_remaining=200.0)
    assert subject_line(alarm) == "[certmon] CRITICAL raised: shop.example.com:443 has a chain problem"


def test_subject_cannot_carry_a_header_injection(make_alarm):
    """Control characters and newlines in a target become spaces, so the subject stays one header line."""
    alarm = make_alarm(target=TargetRef(host="evil\r\nBcc: victim@example.com", port=443))
    subject = subject_line(alarm)
    assert "\r" not in subject and "\n" not in subject
    assert "evil Bcc: victim@example.com:443" in subject


@pytest.mark.parametrize(
    ("days", "phrase"),
    [
        (5.99, "expires in 5 days"),
        (1.0, "expires in 1 day"),
        (0.2, "expires within a day"),
        (-0.2, "has just expired"),
        (-1.5, "expired 1 day ago"),
        (-3.0, "expired 3 days ago"),
    ],
)
def test_days_phrase_on_both_sides_of_expiry(days, phrase):
    """Days remaining read naturally before and after the certificate expires."""
    assert days_phrase(days) == phrase


def test_text_body_has_what_an_owner_needs(make_alarm):
    """The text body names transition, levels, target, certificate, findings, owner, rule and the view link."""
    text = render(make_alarm(transition="changed", previous_level="warning")).text
    for expected in (
        "changed from WARNING to CRITICAL",
        "shop.example.com:443",
        "CN=shop.example.com",
        "CN=Example Issuing CA",
        "2026-03-06T18:00:00+00:00",
        FINGERPRINT,
        "[CRITICAL] expiry.within_7_days: expires in 5 days",
        "shop-team (chosen by certificate[0] san=*.shop.example.com)",
        f"https://certmon.example.com/certificates/{FINGERPRINT}",
    ):
        assert expected in text


def test_html_escapes_a_hostile_certificate_subject(make_alarm):
    """A `<script>` in a certificate subject is escaped in HTML and shown as-is in text."""
    alarm = make_alarm()
    alarm = alarm.model_copy(update={"certificate": alarm.certificate.model_copy(update={"subject": HOSTILE})})
    message = render(alarm)
    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in message.html
    assert HOSTILE in message.text
    assert f'href="https://certmon.example.com/certificates/{FINGERPRINT}"' in message.html


def test_html_escapes_hostile_finding_messages(make_alarm):
    """Finding messages come from certificates and servers, so they are escaped too."""
    finding = make_alarm().findings[0].model_copy(update={"message": '<img src=x onerror="alert(1)">'})
    html = render(make_alarm(findings=[finding])).html
    assert "<img" not in html and "&lt;img src=x" in html


def test_user_templates_override_packaged_ones_file_by_file(make_alarm, tmp_path):
    """A user directory with only a text template changes the text and keeps the packaged HTML."""
    (tmp_path / "alarm.txt.j2").write_text("Custom: {{ target }} is {{ level }}\n", encoding="utf-8")
    message = render(make_alarm(), templates_dir=tmp_path)
    assert message.text == "Custom: shop.example.com:443 is critical\n"
    assert "<h2" in message.html


def test_user_template_cannot_escape_the_sandbox(make_alarm, tmp_path):
    """A template reaching for Python internals fails to render instead of running code."""
    (tmp_path / "alarm.txt.j2").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}", encoding="utf-8")
    with pytest.raises(RenderError):
        render(make_alarm(), templates_dir=tmp_path)


def test_user_template_with_a_typo_fails_loudly(make_alarm, tmp_path):
    """An unknown variable is an error, not a silently empty notification."""
    (tmp_path / "alarm.txt.j2").write_text("{{ taregt }}", encoding="utf-8")
    with pytest.raises(RenderError, match="taregt"):
        render(make_alarm(), templates_dir=tmp_path)


def test_alarm_without_certificate_renders(make_alarm):
    """An unreachable endpoint's alarm has no certificate and still renders, its view link to the alarm."""
    alarm = make_alarm(
        certificate=None, days_remaining=None, key=make_alarm().key.model_copy(update={"trigger": "reachability"})
    )
    message = render(alarm)
    assert message.subject == "[certmon] CRITICAL raised: shop.example.com:443 is unreachable"
    assert "View: https://certmon.example.com/alarms/alarm-1" in message.text
    assert 'href="https://certmon.example.com/alarms/alarm-1"' in message.html


def test_packaged_templates_pass_the_start_check():
    """Every packaged template renders every transition."""
    Renderer(public_url="https://certmon.example.com").validate()


def test_start_check_names_the_file_and_line_of_a_template_that_fails(tmp_path):
    """A user template with an unknown variable stops the start, naming its file and line."""
    (tmp_path / "alarm.html.j2").write_text("<p>{{ target }}</p>\n<p>{{ taregt }}</p>\n", encoding="utf-8")
    with pytest.raises(RuntimeConfigError, match=r"alarm\.html\.j2:2 .*taregt"):
        Renderer(public_url="https://certmon.example.com", templates_dir=tmp_path).validate()


def test_start_check_names_the_line_of_a_syntax_error(tmp_path):
    """A template that does not parse stops the start with the line of the error."""
    (tmp_path / "alarm.txt.j2").write_text("ok\n{% if level %}\nno endif\n", encoding="utf-8")
    with pytest.raises(RuntimeConfigError, match=r"alarm\.txt\.j2:\d"):
        Renderer(public_url="https://certmon.example.com", templates_dir=tmp_path).validate()


def test_start_check_fails_on_a_transition_a_template_forgets(tmp_path):
    """A template that only works while an acknowledgement is present fails on the other transitions."""
    (tmp_path / "alarm.txt.j2").write_text("{{ acknowledgement.by }}\n", encoding="utf-8")
    with pytest.raises(RuntimeConfigError, match=r"alarm\.txt\.j2:1"):
        Renderer(public_url="https://certmon.example.com", templates_dir=tmp_path).validate()


def test_missing_templates_directory_stops_the_start(tmp_path):
    """A configured templates directory that does not exist is a configuration error."""
    with pytest.raises(RuntimeConfigError, match="not a directory"):
        Renderer(public_url="https://certmon.example.com", templates_dir=tmp_path / "nowhere").validate()


async def test_console_sender_prints_a_readable_block(make_alarm):
    """The console channel writes the subject, the owner and the text body to its stream."""
    alarm = make_alarm(owners=[])
    delivery = plan_deliveries(alarm, "ev-1", channels=(ChannelKind.CONSOLE,))[0]
    stream = io.StringIO()
    assert (
        await ConsoleSender(Renderer(public_url="http://127.0.0.1:8080"), stream).send(delivery, notice_of(alarm))
        is None
    )
    printed = stream.getvalue()
    assert printed.startswith("=" * 72 + "\n[certmon] CRITICAL raised: shop.example.com:443 expires in 5 days\n")
    assert "For: unowned (chosen by no owner matched)" in printed
    assert "expiry.within_7_days" in printed
