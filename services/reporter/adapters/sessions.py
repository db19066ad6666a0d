"""Signed dashboard sessions (the cookie `/login` sets) and the CSRF tokens of the dashboard's forms.

A session records a random id, the scope it grants, which API token opened it and when it ends. It never holds the
token: only a keyed digest of it, so a token removed from the configuration ends its sessions. itsdangerous signs
the session with HMAC-SHA256 under the action-link key (`shared.action_links.link_secret_key`) with a salt of its
own, so a browser can read the cookie but not alter it, and a session is never mistaken for an acknowledge link.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from itsdangerous import BadSignature, URLSafeSerializer

Scope = Literal["read", "write"]

SESSION_COOKIE = "certmon_session"
SESSION_LIFETIME = timedelta(hours=12)
_SALT = "certmon.dashboard.session.v1"
_DIGEST_LABEL = b"certmon.dashboard.digests.v1"
#: Far longer than any session we sign; anything longer is not worth a signature check.
_MAX_COOKIE_CHARS = 1024


@dataclass(frozen=True)
class Session:
    """A signed-in browser: its session id, the scope granted at sign-in, the digest of the token used, the end."""

    id: str
    scope: Scope
    token_id: str
    expires_at: datetime


class SessionSigner:
    """Opens, signs and verifies sessions, and derives the keyed digests of tokens and the CSRF tokens, with one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a session key needs at least 16 bytes")
        self._serializer = URLSafeSerializer(key, salt=_SALT, signer_kwargs={"digest_method": hashlib.sha256})
        self._digest_key = hmac.digest(key, _DIGEST_LABEL, "sha256")

    def open(self, scope: Scope, token: bytes, *, now: datetime) -> Session:
        """A new session of `scope`, opened with `token`, ending SESSION_LIFETIME after `now`."""
        return Session(secrets.token_urlsafe(16), scope, self.token_id(token), now + SESSION_LIFETIME)

    def sign(self, session: Session) -> str:
        """The cookie value for `session`."""
        payload = {"i": session.id, "s": session.scope, "t": session.token_id, "e": int(session.expires_at.timestamp())}
        return str(self._serializer.dumps(payload))

    def verify(self, cookie: str, *, now: datetime) -> Session | None:
        """The session a cookie stands for, or None if we did not sign it, it was altered or it has ended."""
        if not cookie or len(cookie) > _MAX_COOKIE_CHARS:
            return None
        try:
            data = self._serializer.loads(cookie)
        except BadSignature:
            return None
        if not isinstance(data, dict) or data.get("s") not in ("read", "write"):
            return None
        session = Session(str(data["i"]), data["s"], str(data["t"]), datetime.fromtimestamp(int(data["e"]), UTC))
        return session if now < session.expires_at else None

    def token_id(self, token: bytes) -> str:
        """A keyed digest that names `token` in a session without revealing it."""
        return self._digest(b"token", token)[:32]

    def csrf_token(self, subject: str) -> str:
        """The CSRF token of the forms shown to `subject` (a session id, a proxy's user, or everyone when open)."""
        return self._digest(b"csrf", subject.encode())

    def _digest(self, purpose: bytes, value: bytes) -> str:
        return hmac.new(self._digest_key, purpose + b"\0" + value, "sha256").hexdigest()
