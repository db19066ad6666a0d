"""Signed action links: the token in `{public_url}/ack/{token}` that lets an email's recipient acknowledge an
alarm without an API token.

The notifier signs, the reporter verifies; both read the same key (`link_secret_key`). A token names the alarm
and the recipient it was sent to and carries its expiry; itsdangerous signs it with HMAC-SHA256, so altering
any of the three breaks the signature.

Errors: `InvalidLink` (with `reason` one of `malformed`, `altered`, `expired`) when a token must not be honoured.
"""

import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import structlog
from itsdangerous import BadSignature, URLSafeSerializer

from shared.settings import Settings

log = structlog.get_logger(__name__)

#: Kept in the data directory when no secret is configured, so every process of one installation shares it.
GENERATED_SECRET_FILE = "link-secret"
_SALT = "certmon.alarm.acknowledge.v1"

LinkProblem = Literal["malformed", "altered", "expired"]


class InvalidLink(Exception):
    """An action link that must not be honoured; `reason` says why."""

    def __init__(self, reason: LinkProblem, message: str) -> None:
        super().__init__(message)
        self.reason: LinkProblem = reason


@dataclass(frozen=True)
class AckLink:
    """What a valid acknowledge token says: which alarm, who it was sent to, until when it works."""

    alarm_id: str
    recipient: str
    expires_at: datetime


class ActionLinkSigner:
    """Signs and verifies acknowledge tokens with one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("an action-link key needs at least 16 bytes")
        self._serializer = URLSafeSerializer(key, salt=_SALT, signer_kwargs={"digest_method": hashlib.sha256})

    def sign(self, link: AckLink) -> str:
        """The URL-safe token for `link`."""
        return str(
            self._serializer.dumps({"a": link.alarm_id, "r": link.recipient, "e": int(link.expires_at.timestamp())})
        )

    def verify(self, token: str, *, now: datetime) -> AckLink:
        """The link a token stands for; raises InvalidLink when it is not one we signed, or has expired."""
        if not token or len(token) > 4096:
            raise InvalidLink("malformed", "this is not an acknowledge link")
        try:
            data = self._serializer.loads(token)
        except BadSignature as exc:
            raise InvalidLink("altered", "this link was not issued by certmon or has been altered") from exc
        if not isinstance(data, dict) or not {"a", "r", "e"} <= data.keys():
            raise InvalidLink("malformed", "this is not an acknowledge link")
        link = AckLink(str(data["a"]), str(data["r"]), datetime.fromtimestamp(int(data["e"]), UTC))
        if now >= link.expires_at:
            raise InvalidLink("expired", f"this link expired on {link.expires_at:%Y-%m-%d %H:%M} UTC")
        return link


def link_secret_key(settings: Settings) -> bytes:
    """`CERTMON_LINK_SECRET` (or the secrets directory's `link_secret`), else a key generated once and kept in
    the data directory. Replicas on different machines must share the configured one."""
    if settings.link_secret is not None:
        return settings.link_secret.get_secret_value().encode()
    path = Path(settings.data_dir) / GENERATED_SECRET_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    try:
        # O_EXCL: when two processes start at once, one writes the key and the other reads it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    log.warning("link_secret_generated", path=str(path), hint="set CERTMON_LINK_SECRET when replicas run apart")
    return key
