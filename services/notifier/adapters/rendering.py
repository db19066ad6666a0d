"""Turning an alarm event into a message: the subject line and the text and HTML bodies from Jinja2 templates.

Templates run in an immutable sandbox (users may supply their own) and see only plain dicts of primitives;
HTML templates are autoescaped, so a hostile certificate subject cannot inject markup. A user's template
directory (`channels.email.templates`) wins over the packaged templates file by file, and `Renderer.validate`
renders every template against a sample alarm of each transition at start, so a broken one stops the notifier
at once instead of failing each delivery later.

Errors: `RenderError` means a template could not be loaded or rendered, or produced too much output;
`shared.settings.RuntimeConfigError` (from `validate`) names the template file and line that failed.
"""

import math
import re
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args
from urllib.parse import quote

import jinja2

from services.notifier.domain.deliveries import ChannelKind, Delivery, Notice
from shared.action_links import AckLink, ActionLinkSigner
from shared.clock import Clock
from shared.events import (
    Acknowledgement,
    AlarmEvent,
    AlarmKey,
    CertificateInfo,
    Finding,
    KeyInfo,
    OwnerRef,
    TargetRef,
    make_event,
)
from shared.events.alarm import AlarmTransition
from shared.settings import RuntimeConfigError
from shared.template_checks import BoundedSandbox, TemplateFailed, render_bounded

#: The most a rendered body may weigh; the sandbox bounds what a template may call, not how much it prints.
MAX_BODY_CHARS = 512_000
_MAX_SUBJECT_CHARS = 200
_UNSAFE_IN_HEADER = re.compile(r"[\x00-\x1f\x7f\s]+")
_PROBLEMS = {
    "security": "has a security problem",
    "chain": "has a chain problem",
    "validity": "has a validity problem",
    "reachability": "is unreachable",
}


#: The transitions whose messages offer an acknowledge link (while the alarm is open).
ACKNOWLEDGEABLE = frozenset({"raised", "changed", "reminded"})


class RenderError(Exception):
    """A template could not be loaded or rendered, or its output was too large."""


@dataclass(frozen=True)
class RenderedMessage:
    """What the email and console channels send: one subject line, a plain-text body and an HTML body."""

    subject: str
    text: str
    html: str


def one_line(value: str, limit: int = _MAX_SUBJECT_CHARS) -> str:
    """Collapse control characters and whitespace to single spaces and cap the length (safe in a header)."""
    flat = _UNSAFE_IN_HEADER.sub(" ", value).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def target_label(target: TargetRef, fallback: str) -> str:
    """How a user recognises the target: `host:port`, or the certificate file's path."""
    if target.file:
        return target.file
    if target.host:
        return f"{target.host}:{target.port}" if target.port else target.host
    return fallback


def days_phrase(days_remaining: float | None) -> str:
    """`expires in 5 days`, `expires within a day`, `expired 3 days ago`."""
    if days_remaining is None:
        return "has an expiry problem"
    if days_remaining < 0:
        ago = math.floor(-days_remaining)
        return "has just expired" if ago == 0 else f"expired {ago} day{'s' if ago != 1 else ''} ago"
    left = math.floor(days_remaining)
    return "expires within a day" if left == 0 else f"expires in {left} day{'s' if left != 1 else ''}"


def problem_phrase(alarm: AlarmEvent) -> str:
    """What is wrong, after the target's name: `expires in 5 days`, `has a chain problem`, `is unreachable`."""
    trigger = alarm.key.trigger
    return days_phrase(alarm.days_remaining) if trigger == "expiry" else _PROBLEMS[trigger]


def acknowledged_phrase(ack: Acknowledgement | None) -> str:
    """`acknowledged by alice@example.com: renewal ordered` (without the colon when there is no comment)."""
    if ack is None:
        return "acknowledged"
    return f"acknowledged by {ack.by}" + (f": {ack.comment}" if ack.comment else "")


def subject_line(alarm: AlarmEvent) -> str:
    """E.g. `[certmon] CRITICAL raised: shop.example.com:443 expires in 5 days`, `[certmon] REMINDER: CRITICAL
    alarm on shop.example.com:443 still open (expires in 5 days), reminder 2`."""
    target = target_label(alarm.target, alarm.key.target_key)
    level = alarm.level.upper()
    was = alarm.previous_level.upper() if alarm.previous_level else None
    if alarm.transition == "resolved":
        text = f"[certmon] {level} resolved: {target}" + (f" (was {was})" if was else "")
    elif alarm.transition == "reminded":
        number = max(1, alarm.reminders_sent)
        text = f"[certmon] REMINDER: {level} alarm on {target} still open ({problem_phrase(alarm)}), reminder {number}"
    elif alarm.transition == "acknowledged":
        text = f"[certmon] {level} on {target} {acknowledged_phrase(alarm.acknowledgement)}"
    else:
        change = f" from {was}" if alarm.transition == "changed" and was else ""
        text = f"[certmon] {level} {alarm.transition}{change}: {target} {problem_phrase(alarm)}"
    return one_line(text)


def view_url(alarm: AlarmEvent, public_url: str) -> str:
    """The dashboard page of the alarm's certificate, or of the alarm itself when it has no certificate."""
    base = public_url.rstrip("/")
    if alarm.certificate is not None:
        return f"{base}/certificates/{quote(alarm.certificate.fingerprint_sha256, safe='')}"
    return f"{base}/alarms/{quote(alarm.alarm_id, safe='')}"


class AckLinks:
    """Makes the signed acknowledge links of emails: `{public_url}/ack/{token}`, the token naming the alarm, the
    delivery's recipient and an expiry `expires_seconds` from now."""

    def __init__(self, signer: ActionLinkSigner, *, public_url: str, expires_seconds: float, clock: Clock) -> None:
        self._signer, self._base = signer, public_url.rstrip("/")
        self._expires, self._clock = timedelta(seconds=expires_seconds), clock

    def url_for(self, notice: Notice, delivery: Delivery) -> str | None:
        """The link for this delivery, or None when the event offers none (not open, or not a raise, change or
        reminder)."""
        alarm = notice.alarm
        if alarm.transition not in ACKNOWLEDGEABLE or alarm.state != "open":
            return None
        link = AckLink(alarm.alarm_id, delivery.recipient, self._clock() + self._expires)
        return f"{self._base}/ack/{self._signer.sign(link)}"


def message_context(notice: Notice, delivery: Delivery, *, public_url: str, ack_url: str | None) -> dict[str, Any]:
    """The variables a template sees: plain values only, never our models."""
    alarm, alarm_event_id = notice.alarm, notice.event_id
    ack = alarm.acknowledgement
    fingerprint = alarm.certificate.fingerprint_sha256 if alarm.certificate else alarm.key.fingerprint_sha256
    cert = alarm.certificate
    return {
        "subject": subject_line(alarm),
        "alarm_id": alarm.alarm_id,
        "alarm_event_id": alarm_event_id,
        "transition": alarm.transition,
        "level": alarm.level,
        "previous_level": alarm.previous_level,
        "trigger": alarm.key.trigger,
        "triggers": list(alarm.triggers),
        "target": target_label(alarm.target, alarm.key.target_key),
        "target_key": alarm.key.target_key,
        "server": alarm.target.server,
        "days_remaining": None if alarm.days_remaining is None else f"{math.floor(alarm.days_remaining * 10) / 10:.1f}",
        "days_phrase": days_phrase(alarm.days_remaining),
        "grade": alarm.grade,
        "occurred_at": alarm.occurred_at.isoformat(),
        "certificate": None
        if cert is None
        else {
            "subject": cert.subject,
            "issuer": cert.issuer,
            "serial": cert.serial,
            "not_before": cert.not_before.isoformat(),
            "not_after": cert.not_after.isoformat(),
            "fingerprint_sha256": cert.fingerprint_sha256,
            "san": list(cert.san),
        },
        "fingerprint_sha256": fingerprint,
        "findings": [{"code": f.code, "severity": f.severity, "message": f.message} for f in alarm.findings],
        "owner": delivery.owner,
        "rule": delivery.rule,
        "recipients": list(delivery.recipients),
        "state": alarm.state,
        "cause": alarm.cause,
        "reminders_sent": alarm.reminders_sent,
        "next_reminder_at": None if alarm.next_reminder_at is None else alarm.next_reminder_at.isoformat(),
        "acknowledgement": None
        if ack is None
        else {"by": ack.by, "at": ack.at.isoformat(), "comment": ack.comment, "via": ack.via},
        "acknowledged_phrase": acknowledged_phrase(ack),
        "view_url": view_url(alarm, public_url),
        "ack_url": ack_url,
    }


class Renderer:
    """Renders `alarm.txt.j2` and `alarm.html.j2` from `templates_dir` if it has them, else packaged ones."""

    TEMPLATES = ("alarm.txt.j2", "alarm.html.j2")

    def __init__(self, *, public_url: str, templates_dir: Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = []
        if templates_dir is not None:
            loaders.append(jinja2.FileSystemLoader(templates_dir))
        loaders.append(jinja2.PackageLoader("services.notifier.adapters", "templates"))
        self._public_url = public_url
        self._templates_dir = templates_dir
        self._env = BoundedSandbox(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def render(self, notice: Notice, delivery: Delivery, *, ack_url: str | None = None) -> RenderedMessage:
        """The message for one delivery of an alarm event; `ack_url` is the acknowledge link it offers, if any."""
        context = message_context(notice, delivery, public_url=self._public_url, ack_url=ack_url)
        return RenderedMessage(
            subject=context["subject"],
            text=self._render("alarm.txt.j2", context),
            html=self._render("alarm.html.j2", context),
        )

    def validate(self) -> None:
        """Render every template against a sample alarm of each transition, with and without an acknowledge
        link; raises RuntimeConfigError naming the template file and line of the first failure, or a missing
        templates directory."""
        if self._templates_dir is not None and not self._templates_dir.is_dir():
            raise RuntimeConfigError(f"channels.email.templates: {self._templates_dir} is not a directory")
        delivery = Delivery(ChannelKind.EMAIL, ("owner@example.com",), "sample-owner", "default", "sample")
        for name in self.TEMPLATES:
            for transition in get_args(AlarmTransition):
                notice = sample_notice(transition)
                ack_url = f"{self._public_url.rstrip('/')}/ack/sample-token" if transition in ACKNOWLEDGEABLE else None
                context = message_context(notice, delivery, public_url=self._public_url, ack_url=ack_url)
                try:
                    self._render(name, context)
                except RenderError as exc:
                    where = _template_location(exc.__cause__, self._template_file(name))
                    raise RuntimeConfigError(
                        f"notification template {where} does not render a {transition} alarm: {exc.__cause__ or exc}"
                    ) from exc

    def _template_file(self, name: str) -> str:
        try:
            return self._env.get_template(name).filename or name
        except (jinja2.TemplateError, OSError):
            return name

    def _render(self, name: str, context: dict[str, Any]) -> str:
        try:
            template = self._env.get_template(name)
        except (jinja2.TemplateError, OSError) as exc:
            raise RenderError(f"{name}: {type(exc).__name__}: {exc}") from exc
        try:
            return render_bounded(template, context, limit=MAX_BODY_CHARS)
        except TemplateFailed as exc:
            # The template's own error is the cause, so that `validate` can name the template line it came from.
            raise RenderError(f"{name}: {exc}") from (exc.__cause__ or exc)


def _template_location(error: BaseException | None, filename: str) -> str:
    """`path:line` of where a template failed: the syntax error's line, or the template's last frame in the
    traceback of an error raised while rendering (Jinja2 maps those frames to template lines)."""
    if isinstance(error, jinja2.TemplateSyntaxError):
        return f"{error.filename or filename}:{error.lineno}"
    if error is not None:
        lines = [f.lineno for f in traceback.extract_tb(error.__traceback__) if f.filename == filename]
        if lines:
            return f"{filename}:{lines[-1]}"
    return filename


def sample_notice(transition: AlarmTransition) -> Notice:
    """An alarm event of `transition` with every optional part filled in, to try templates on at start."""
    at = datetime(2030, 1, 1, tzinfo=UTC)
    fingerprint = "0" * 64
    alarm = AlarmEvent(
        alarm_id="sample-alarm",
        key=AlarmKey(target_key="www.example.com:443", fingerprint_sha256=fingerprint, trigger="expiry"),
        transition=transition,
        level="ok" if transition == "resolved" else "critical",
        previous_level="warning" if transition in ("changed", "resolved") else None,
        triggers=["expiry"],
        findings=[Finding(code="expiry.within_7_days", severity="critical", message="expires in 5 days")],
        owners=[OwnerRef(name="sample-owner", email=["owner@example.com"], rule="default")],
        target=TargetRef(host="www.example.com", port=443, sni="www.example.com", server="web-01"),
        certificate=CertificateInfo(
            fingerprint_sha256=fingerprint,
            subject="CN=www.example.com",
            issuer="CN=Example CA",
            serial="01",
            not_before=at - timedelta(days=85),
            not_after=at + timedelta(days=5),
            san=["www.example.com"],
            key=KeyInfo(type="EC", bits=256, curve="secp256r1"),
            signature_algorithm="ecdsa-with-SHA256",
        ),
        days_remaining=5.0,
        grade="A",
        occurred_at=at,
        state={"acknowledged": "acknowledged", "resolved": "resolved"}.get(transition, "open"),
        acknowledgement=Acknowledgement(by="owner@example.com", at=at, comment="renewal ordered", via="link")
        if transition == "acknowledged"
        else None,
        cause="sample",
        reminders_sent=2 if transition == "reminded" else 0,
        next_reminder_at=at + timedelta(days=1) if transition != "resolved" else None,
    )
    event = make_event(f"alarm.{transition}.v1", alarm, source="certmon/alarmer", event_id="sample-event")
    return Notice(event, alarm)
