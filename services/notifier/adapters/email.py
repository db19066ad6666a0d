"""Email over SMTP with aiosmtplib: multipart text + HTML, STARTTLS enforced when configured, a bounded send.

Every failure becomes `DeliveryError`: 4xx replies and connection trouble are transient, 5xx replies, a
server that will not do STARTTLS, TLS verification failures, missing secrets and templates that do not render
are permanent. The password
is read when sending (so a rotated secret is picked up) and never logged.
"""

import asyncio
import hashlib
import os
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib
import structlog
from pydantic import SecretStr

from services.notifier.adapters.rendering import AckLinks, RenderedMessage, Renderer, RenderError
from services.notifier.domain.deliveries import Delivery, Notice
from services.notifier.ports import DeliveryError
from shared.clock import Clock, utc_now
from shared.config import EmailChannel

log = structlog.get_logger(__name__)


def message_id(idempotency_key: str, from_address: str) -> str:
    """A Message-ID shared by every attempt of one delivery, so mail clients can drop duplicates."""
    domain = from_address.rpartition("@")[2] or "certmon.invalid"
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}@{domain}>"


def build_email(message: RenderedMessage, delivery: Delivery, *, from_address: str, date: str) -> EmailMessage:
    """A multipart/alternative message (text, then HTML); raises ValueError on a header with CR/LF."""
    email = EmailMessage()
    email["From"] = from_address
    email["To"] = ", ".join(delivery.recipients)
    email["Subject"] = message.subject
    email["Date"] = date
    email["Message-ID"] = message_id(delivery.idempotency_key, from_address)
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    email.set_content(message.text)
    email.add_alternative(message.html, subtype="html")
    return email


class EmailSender:
    """Sends one delivery as one email through the configured relay, rendered by `renderer` with an acknowledge
    link from `links` (none without it)."""

    def __init__(
        self,
        channel: EmailChannel,
        *,
        renderer: Renderer,
        links: AckLinks | None = None,
        clock: Clock = utc_now,
        tls_context: ssl.SSLContext | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._channel = channel
        self._renderer, self._links = renderer, links
        self._clock = clock
        self._tls_context = tls_context
        self._environ = environ

    async def send(self, delivery: Delivery, notice: Notice) -> str | None:
        """Send or raise DeliveryError; returns a note naming recipients refused while others took it."""
        channel = self._channel
        ack_url = self._links.url_for(notice, delivery) if self._links is not None else None
        try:
            message = self._renderer.render(notice, delivery, ack_url=ack_url)
        except RenderError as exc:
            raise DeliveryError(str(exc), transient=False) from exc
        try:
            email = build_email(message, delivery, from_address=channel.from_, date=format_datetime(self._clock()))
        except (ValueError, TypeError) as exc:
            raise DeliveryError(f"cannot build the message: {exc}", transient=False) from exc
        password = self._password()
        try:
            async with asyncio.timeout(channel.timeout):
                refused, _ = await aiosmtplib.send(
                    email,
                    hostname=channel.host,
                    port=channel.port,
                    username=channel.username,
                    password=password.get_secret_value() if password else None,
                    use_tls=channel.use_tls,
                    # True, not None: None would go on in plaintext when the server does not offer STARTTLS.
                    start_tls=channel.starttls and not channel.use_tls,
                    tls_context=self._tls_context,
                    timeout=channel.timeout,
                )
        except (aiosmtplib.SMTPException, OSError) as exc:
            error = classify(exc)
            log.warning(
                "email_failed",
                key=delivery.idempotency_key,
                host=channel.host,
                transient=error.transient,
                error=str(error),
            )
            raise error from exc
        log.info("email_sent", key=delivery.idempotency_key, host=channel.host, recipients=len(delivery.recipients))
        if refused:
            return "refused: " + "; ".join(f"{rcpt} ({r.code} {r.message})" for rcpt, r in refused.items())
        return None

    def _password(self) -> SecretStr | None:
        channel = self._channel
        if channel.password_env:
            value = (self._environ if self._environ is not None else os.environ).get(channel.password_env)
            if value is None:
                raise DeliveryError(f"environment variable {channel.password_env} is not set", transient=False)
            return SecretStr(value)
        if channel.password_file:
            try:
                return SecretStr(channel.password_file.read_text(encoding="utf-8").rstrip("\r\n"))
            except OSError as exc:
                raise DeliveryError(
                    f"cannot read password_file {channel.password_file}: {exc.strerror}", transient=False
                ) from exc
        if channel.username:
            raise DeliveryError("channels.email.username needs password_env or password_file", transient=False)
        return None


def classify(exc: aiosmtplib.SMTPException | OSError) -> DeliveryError:
    """Map an SMTP or socket failure to a DeliveryError: 4xx and connection trouble are transient."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        detail = "; ".join(f"{r.recipient} ({r.code} {r.message})" for r in exc.recipients)
        return DeliveryError(f"recipients refused: {detail}", transient=all(400 <= c < 500 for c in codes))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return DeliveryError(f"{exc.code} {exc.message}", transient=400 <= exc.code < 500)
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPConnectError):
        return DeliveryError(f"{type(exc).__name__}: {exc}", transient=True)
    if isinstance(exc, ssl.SSLError):
        return DeliveryError(f"TLS failed: {exc}", transient=False)
    if isinstance(exc, aiosmtplib.SMTPException):  # e.g. STARTTLS required but not offered
        return DeliveryError(exc.message, transient=False)
    if isinstance(exc, TimeoutError):
        return DeliveryError("timed out", transient=True)
    return DeliveryError(f"{type(exc).__name__}: {exc}", transient=True)
