"""Webhooks over HTTP(S) with httpx: the alarm event posted to a chat or incident tool as a CloudEvent
(structured JSON), as a Slack-compatible message (`text` and `blocks`, which Mattermost and Rocket.Chat accept
too), or as the plain alarm JSON.

Each request carries `X-Certmon-Delivery` (a hash of the idempotency key, the same on every attempt, so a
receiver can drop a duplicate) and, with a secret, `X-Certmon-Signature: sha256=<hex HMAC-SHA256 of the body>`.
Secrets and `headers_env` values are read when sending (a rotated secret is picked up) and never logged; nor
is the URL, whose path often is a credential itself (Slack's incoming webhooks): logs and errors name the
receiver and its host.

The host must resolve only to addresses that `scanning.deny/allow` (`shared.address_policy`) permits, so a
webhook cannot point certmon at a cloud metadata service.

Errors: every failure is a `DeliveryError`: 5xx, 408 and 429 replies, timeouts, name resolution and connection
failures are transient; any other non-2xx reply, a denied address and a missing secret are permanent.
"""

import asyncio
import hashlib
import hmac
import json
import os
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import structlog

from services.notifier.adapters.rendering import problem_phrase, subject_line, target_label, view_url
from services.notifier.domain.deliveries import Delivery, Notice
from services.notifier.ports import DeliveryError
from shared.address_policy import AddressPolicy
from shared.config import WebhookChannel

log = structlog.get_logger(__name__)

#: Replies worth trying again besides 5xx: a request timeout and rate limiting.
TRANSIENT_STATUSES = frozenset({408, 429})
USER_AGENT = "certmon-notifier"

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (an IP literal resolves to itself), without repeats."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def delivery_id(delivery: Delivery) -> str:
    """The `X-Certmon-Delivery` value: the same for every attempt of one delivery, and no other."""
    return hashlib.sha256(delivery.idempotency_key.encode()).hexdigest()


def signature(secret: bytes, body: bytes) -> str:
    """The `X-Certmon-Signature` value: `sha256=` and the hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def request_body(receiver: WebhookChannel, notice: Notice, *, public_url: str) -> tuple[bytes, str]:
    """The body in the receiver's format, and its content type."""
    if receiver.format == "cloudevents":
        return notice.event.model_dump_json(exclude_none=True).encode(), "application/cloudevents+json"
    if receiver.format == "slack":
        return json.dumps(slack_message(notice, public_url=public_url)).encode(), "application/json"
    return notice.alarm.model_dump_json().encode(), "application/json"


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn treats these three as control characters (links, mentions); everything else is literal.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(notice: Notice, *, public_url: str) -> dict[str, Any]:
    """A Slack-compatible message: `text` (the subject line, what notifications and plain clients show) and
    `blocks` with the details and a link to the alarm in certmon."""
    alarm = notice.alarm
    subject = _slack_escape(subject_line(alarm))
    lines = [
        f"*Level:* {alarm.level.upper()}" + (f" (was {alarm.previous_level.upper()})" if alarm.previous_level else ""),
        f"*Target:* {_slack_escape(target_label(alarm.target, alarm.key.target_key))}",
        f"*Problem:* {_slack_escape(problem_phrase(alarm))}",
    ]
    if alarm.certificate is not None:
        lines.append(f"*Certificate:* {_slack_escape(alarm.certificate.subject)}")
        lines.append(f"*Not after:* {alarm.certificate.not_after.isoformat()}")
    lines.extend(f"• `{f.code}`: {_slack_escape(f.message)}" for f in alarm.findings[:10])
    link = view_url(alarm, public_url)
    return {
        "text": subject,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{subject}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"<{link}|View in certmon> · {alarm.alarm_id}"}],
            },
        ],
    }


class WebhookSender:
    """Posts deliveries to the webhooks of `channels.webhook` (the delivery's recipient is the receiver's name)
    through one HTTP client; `aclose()` releases it."""

    def __init__(
        self,
        receivers: Mapping[str, WebhookChannel],
        *,
        policy: AddressPolicy,
        public_url: str,
        environ: Mapping[str, str] | None = None,
        resolver: Resolver = resolve,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._receivers = dict(receivers)
        self._policy, self._public_url = policy, public_url
        self._environ, self._resolver = environ, resolver
        self._client = httpx.AsyncClient(
            verify=tls_context if tls_context is not None else True,
            # A redirect or a proxy from the environment would reach an address the policy never checked.
            follow_redirects=False,
            trust_env=False,
            # No kept-alive connections: one is keyed by the IP it reached, and would carry another webhook's
            # request (with another Host and a TLS session verified for another name) to the same IP.
            limits=httpx.Limits(max_keepalive_connections=0),
            headers={"User-Agent": USER_AGENT},
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    async def send(self, delivery: Delivery, notice: Notice) -> str | None:
        """Post the alarm event to the delivery's webhook, or raise DeliveryError."""
        name = delivery.recipient
        receiver = self._receivers.get(name)
        if receiver is None:
            raise DeliveryError(f"no webhook named {name!r} in channels.webhook", transient=False)
        body, content_type = request_body(receiver, notice, public_url=self._public_url)
        headers = {**receiver.headers, **self._secret_headers(name, receiver, body)}
        headers |= {"Content-Type": content_type, "X-Certmon-Delivery": delivery_id(delivery)}
        url = httpx.URL(receiver.url)
        host = url.host
        try:
            status = await self._post(name, receiver, url, headers, body)
        except DeliveryError as error:
            log.warning("webhook_failed", receiver=name, host=host, transient=error.transient, error=str(error))
            raise
        log.info("webhook_sent", receiver=name, host=host, status=status, key=delivery.idempotency_key)
        return None

    async def _post(
        self, name: str, receiver: WebhookChannel, url: httpx.URL, headers: dict[str, str], body: bytes
    ) -> int:
        address = await self._checked_address(name, url)
        # DNS rebinding: the name is resolved once, every address it gave is checked, and the request goes to
        # the checked address itself (the Host header and TLS's SNI and certificate check keep the name), so a
        # second resolution answering with another address is never made.
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        headers = {**headers, "Host": url.netloc.decode("ascii")}
        try:
            async with asyncio.timeout(receiver.timeout):  # a whole-request bound: httpx bounds each read only
                async with self._client.stream(
                    "POST",
                    url.copy_with(host=address),
                    content=body,
                    headers=headers,
                    timeout=receiver.timeout,
                    extensions=extensions,
                ) as response:
                    status = response.status_code  # the reply's body is not read: nothing in it matters
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise DeliveryError(f"webhook {name}: no reply within {receiver.timeout}s", transient=True) from exc
        except httpx.TransportError as exc:
            raise DeliveryError(f"webhook {name}: {type(exc).__name__}: {exc}", transient=True) from exc
        if 200 <= status < 300:
            return status
        transient = status >= 500 or status in TRANSIENT_STATUSES
        raise DeliveryError(f"webhook {name}: HTTP {status}", transient=transient)

    async def _checked_address(self, name: str, url: httpx.URL) -> str:
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = await self._resolver(url.host, port)
        except OSError as exc:
            raise DeliveryError(f"webhook {name}: {url.host} does not resolve ({exc})", transient=True) from exc
        if not addresses:
            raise DeliveryError(f"webhook {name}: {url.host} resolves to no address", transient=True)
        denied = [address for address in addresses if not self._policy.permits(address)]
        if denied:
            raise DeliveryError(
                f"webhook {name}: {url.host} resolves to {', '.join(denied)}, denied by scanning.deny/allow",
                transient=False,
            )
        return addresses[0]

    def _secret_headers(self, name: str, receiver: WebhookChannel, body: bytes) -> dict[str, str]:
        headers = {header: self._env(name, variable) for header, variable in receiver.headers_env.items()}
        secret = self._secret(name, receiver)
        if secret is not None:
            headers["X-Certmon-Signature"] = signature(secret, body)
        return headers

    def _secret(self, name: str, receiver: WebhookChannel) -> bytes | None:
        if receiver.secret_env is not None:
            return self._env(name, receiver.secret_env).encode()
        if receiver.secret_file is not None:
            return _read_secret(name, receiver.secret_file)
        return None

    def _env(self, name: str, variable: str) -> str:
        value = (self._environ if self._environ is not None else os.environ).get(variable)
        if value is None:
            raise DeliveryError(f"webhook {name}: environment variable {variable} is not set", transient=False)
        return value


def _read_secret(name: str, path: Path) -> bytes:
    try:
        return path.read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise DeliveryError(f"webhook {name}: cannot read secret_file {path}: {exc.strerror}", transient=False) from exc
