"""Turning an alarm event into a message: the subject line and the text and HTML bodies from Jinja2 templates.

Templates run in an immutable sandbox (users may supply their own) and see only plain dicts of primitives;
HTML templates are autoescaped, so a hostile certificate subject cannot inject markup. A user's template
directory wins over the packaged templates file by file.

Errors: `RenderError` means a template could not be loaded or rendered, or produced too much output.
"""

import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from services.notifier.domain.deliveries import Delivery, RenderedMessage
from shared.events import AlarmEvent, TargetRef

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


class RenderError(Exception):
    """A template could not be loaded or rendered, or its output was too large."""


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


def subject_line(alarm: AlarmEvent) -> str:
    """E.g. `[certmon] CRITICAL raised: shop.example.com:443 expires in 5 days`."""
    target = target_label(alarm.target, alarm.key.target_key)
    level = alarm.level.upper()
    was = alarm.previous_level.upper() if alarm.previous_level else None
    if alarm.transition == "resolved":
        text = f"[certmon] {level} resolved: {target}" + (f" (was {was})" if was else "")
    else:
        change = f" from {was}" if alarm.transition == "changed" and was else ""
        trigger = alarm.key.trigger
        what = days_phrase(alarm.days_remaining) if trigger == "expiry" else _PROBLEMS[trigger]
        text = f"[certmon] {level} {alarm.transition}{change}: {target} {what}"
    return one_line(text)


def message_context(alarm: AlarmEvent, delivery: Delivery, *, alarm_event_id: str, public_url: str) -> dict[str, Any]:
    """The variables a template sees: plain values only, never our models."""
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
        "view_url": f"{public_url.rstrip('/')}/certificates/{quote(fingerprint, safe='')}",
    }


class Renderer:
    """Renders `alarm.txt.j2` and `alarm.html.j2` from `templates_dir` if it has them, else packaged ones."""

    def __init__(self, *, public_url: str, templates_dir: Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = []
        if templates_dir is not None:
            loaders.append(jinja2.FileSystemLoader(templates_dir))
        loaders.append(jinja2.PackageLoader("services.notifier.adapters", "templates"))
        self._public_url = public_url
        self._env = ImmutableSandboxedEnvironment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def render(self, alarm: AlarmEvent, delivery: Delivery, *, alarm_event_id: str) -> RenderedMessage:
        """The message for one delivery of an alarm event."""
        context = message_context(alarm, delivery, alarm_event_id=alarm_event_id, public_url=self._public_url)
        return RenderedMessage(
            subject=context["subject"],
            text=self._render("alarm.txt.j2", context),
            html=self._render("alarm.html.j2", context),
        )

    def _render(self, name: str, context: dict[str, Any]) -> str:
        try:
            out = self._env.get_template(name).render(context)
        except (jinja2.TemplateError, OSError) as exc:
            raise RenderError(f"{name}: {type(exc).__name__}: {exc}") from exc
        if len(out) > MAX_BODY_CHARS:
            raise RenderError(f"{name}: output of {len(out)} characters exceeds {MAX_BODY_CHARS}")
        return out
