"""Who may read and who may write the dashboard and `/api/v1`.

`CERTMON_API_TOKENS` may read; `CERTMON_API_WRITE_TOKENS` may read and write. A request is signed in by, first
match wins:
- a bearer token (`Authorization: Bearer`); a wrong one signs nothing in, whatever else the request carries;
- the header `CERTMON_TRUSTED_USER_HEADER` names, which an authenticating proxy sets to its user: read, and write
  for the users in `CERTMON_TRUSTED_WRITE_USERS`;
- the session cookie `/login` sets (`adapters.sessions`), while the token that opened it is still configured.
With no token and no trusted header configured everything is open, as a local `certmon run` expects; the service
says so in a log line when it starts.

A request not signed in is 401, or, on the dashboard's pages, sent to `/login` (`SignInRequired`); a read-only
viewer asking to write is 403. Writing from a browser (a session, a proxy's user, or anyone when open) also needs
the `csrf_token` form field of the viewer's forms, because a browser sends cookies and proxy credentials to us
whichever site made it post; without it the answer is 403. A bearer token needs none (browsers never add one by
themselves), nor does a JSON body, which no other site can make a browser send without a CORS preflight, and the
reporter allows none.
"""

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import parse_qs

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.reporter.adapters.sessions import SESSION_COOKIE, Scope, SessionSigner
from shared.clock import Clock, utc_now
from shared.settings import Settings

# Two names for the same bearer scheme, so the OpenAPI document says which routes need a write token.
_read_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="readToken",
    description="A token from CERTMON_API_TOKENS (read) or CERTMON_API_WRITE_TOKENS (read and write).",
)
_write_bearer = HTTPBearer(
    auto_error=False, scheme_name="writeToken", description="A token from CERTMON_API_WRITE_TOKENS."
)
#: Larger than any form of the dashboard (an acknowledgement's comment included); a larger body carries no CSRF token.
MAX_FORM_BYTES = 64 * 1024

Guard = Callable[..., Awaitable[None]]
Via = Literal["open", "token", "session", "proxy"]


class SignInRequired(Exception):
    """A dashboard page asked for without credentials: the browser is sent to `/login`, to come back after."""


@dataclass(frozen=True)
class Viewer:
    """Who a request is signed in as: whether they may write, the proxy's user name if any, the CSRF token their
    forms must carry, and how they signed in. A dependency from `ApiTokens.require` sets it as
    `request.state.viewer`."""

    can_write: bool
    name: str | None
    csrf_token: str
    via: Via


class ApiTokens:
    """The configured tokens and the scope each grants, the trusted proxy header, and the sessions of browsers.

    `sessions` signs the session cookies; by default with a key of this process only, so sessions end with it.
    """

    def __init__(self, settings: Settings, *, sessions: SessionSigner | None = None, clock: Clock = utc_now) -> None:
        self._sessions = sessions or SessionSigner(secrets.token_bytes(32))
        self._clock = clock
        self._tokens: list[tuple[bytes, Scope]] = [
            *((t.get_secret_value().encode(), "read") for t in settings.api_tokens),
            *((t.get_secret_value().encode(), "write") for t in settings.api_write_tokens),
        ]
        # Write tokens come last, so a token listed as both is known by its write scope.
        self._token_scopes = {self._sessions.token_id(token): scope for token, scope in self._tokens}
        self._user_header = settings.trusted_user_header or None
        self._write_users = frozenset(settings.trusted_write_users)

    @property
    def open(self) -> bool:
        """True when no token and no trusted header is configured: anyone may read and write."""
        return not self._tokens and self._user_header is None

    def scope_of(self, given: bytes) -> Scope | None:
        """The widest scope `given` grants, or None if it is no configured token."""
        # Compare against every token, so the time taken does not tell which one (or whether any) was close.
        matched = [scope for token, scope in self._tokens if hmac.compare_digest(given, token)]
        return "write" if "write" in matched else "read" if matched else None

    def sign_in(self, token: str) -> str | None:
        """The session cookie's value for a browser that gave `token`, or None if it is no configured token."""
        given = token.encode()
        scope = self.scope_of(given)
        return None if scope is None else self._sessions.sign(self._sessions.open(scope, given, now=self._clock()))

    def require(self, scope: Scope, *, redirect: bool = False) -> Guard:
        """A FastAPI dependency that lets a request through only when it is signed in with `scope` (or wider), and
        sets `request.state.viewer`. With `redirect` (the dashboard's pages) a request not signed in raises
        SignInRequired instead of answering 401."""
        bearer = _write_bearer if scope == "write" else _read_bearer

        async def guard(
            request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
        ) -> None:
            viewer = self._viewer(request, credentials)
            if viewer is None:
                if redirect:
                    raise SignInRequired
                raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
            request.state.viewer = viewer
            if scope == "write" and not viewer.can_write:
                raise HTTPException(403, "this sign-in may only read; acknowledging needs a write token")
            if scope == "write" and viewer.via != "token" and not await _carries_csrf_token(request, viewer):
                raise HTTPException(403, "the form's CSRF token is missing or wrong: reload the page and try again")

        return guard

    def _viewer(self, request: Request, credentials: HTTPAuthorizationCredentials | None) -> Viewer | None:
        """Who `request` is signed in as, or None."""
        if self.open:
            return Viewer(can_write=True, name=None, csrf_token=self._sessions.csrf_token("open"), via="open")
        if credentials is not None:
            scope = self.scope_of(credentials.credentials.encode())
            if scope is None:
                return None
            subject = "token:" + self._sessions.token_id(credentials.credentials.encode())
            return Viewer(scope == "write", None, self._sessions.csrf_token(subject), "token")
        user = request.headers.get(self._user_header, "").strip() if self._user_header is not None else ""
        if user:
            return Viewer(user in self._write_users, user, self._sessions.csrf_token("user:" + user), "proxy")
        session = self._sessions.verify(request.cookies.get(SESSION_COOKIE, ""), now=self._clock())
        granted = self._token_scopes.get(session.token_id) if session is not None else None
        if session is None or granted is None:
            return None
        can_write = session.scope == "write" and granted == "write"
        return Viewer(can_write, None, self._sessions.csrf_token("session:" + session.id), "session")


async def _carries_csrf_token(request: Request, viewer: Viewer) -> bool:
    """True if the request is JSON (which no other site can send) or its form carries the viewer's CSRF token."""
    media_type = _media_type(request)
    if media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json")):
        return True
    form = await read_form(request)
    given = form.get("csrf_token", [""])[0] if form is not None else ""
    return hmac.compare_digest(given.encode(), viewer.csrf_token.encode())


async def read_form(request: Request) -> dict[str, list[str]] | None:
    """The url-encoded form of a request, or None if it is no such form or is larger than MAX_FORM_BYTES.

    It reads through `request.body()`, which keeps the body: a route can read its form after a dependency has.
    """
    length = request.headers.get("content-length", "")
    if _media_type(request) != "application/x-www-form-urlencoded" or not length.isdecimal():
        return None
    if int(length) > MAX_FORM_BYTES:
        return None
    return parse_qs((await request.body()).decode("utf-8", errors="replace"))


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()
