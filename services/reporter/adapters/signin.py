"""Signing in from a browser: `GET /login` (the form), `POST /login` (a token in, a session cookie out),
`POST /logout`, and the redirect of a dashboard page asked for without credentials to `/login?next=...`.

The cookie is HttpOnly, SameSite=Strict, Path=/, and Secure when the request came over HTTPS or
`CERTMON_PUBLIC_URL` is an https address (a proxy that ends TLS in front of the reporter); no forwarded header is
read here. `next` is followed only when it is a path on this site, so `/login` cannot send anyone elsewhere.
Wrong tokens are counted per client address: after FAILED_ATTEMPTS_LIMIT within FAILED_ATTEMPTS_WINDOW the form
answers 429 without looking at the token.
"""

from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.reporter.adapters.auth import ApiTokens, SignInRequired, read_form
from services.reporter.adapters.pages import ACK_CSP
from services.reporter.adapters.rendering import ReportRenderer
from services.reporter.adapters.sessions import SESSION_COOKIE, SESSION_LIFETIME
from shared.clock import Clock

log = structlog.get_logger(__name__)

FAILED_ATTEMPTS_LIMIT = 10
FAILED_ATTEMPTS_WINDOW = timedelta(minutes=15)
_SESSION_SECONDS = int(SESSION_LIFETIME.total_seconds())


class FailedAttempts:
    """Wrong tokens per client address over a sliding window."""

    def __init__(self, *, limit: int, window: timedelta, clock: Clock) -> None:
        self._limit, self._window, self._clock = limit, window, clock
        self._seen: dict[str, list[datetime]] = {}

    def exhausted(self, client: str) -> bool:
        """True if `client` gave `limit` wrong tokens within the window."""
        since = self._clock() - self._window
        for address in list(self._seen):
            recent = [at for at in self._seen[address] if at > since]
            if recent:
                self._seen[address] = recent
            else:
                del self._seen[address]
        return len(self._seen.get(client, ())) >= self._limit

    def record(self, client: str) -> None:
        """Count a wrong token from `client`."""
        self._seen.setdefault(client, []).append(self._clock())


def local_path(target: str) -> str:
    """`target` if it is a path on this site, else `/`: no scheme, no host, nothing a browser reads as one."""
    # A browser reads `\` as `/` and drops tabs and newlines, so `/\evil` and `/<tab>/evil` are `//evil`.
    if (
        not target.startswith("/")
        or target.startswith("//")
        or any(c == "\\" or c < " " or c == "\x7f" for c in target)
    ):
        return "/"
    return target


def add_sign_in(app: FastAPI, tokens: ApiTokens, renderer: ReportRenderer, *, public_url: str, clock: Clock) -> None:
    """Mount `/login` and `/logout` on `app`, and send pages raising SignInRequired to `/login`."""
    attempts = FailedAttempts(limit=FAILED_ATTEMPTS_LIMIT, window=FAILED_ATTEMPTS_WINDOW, clock=clock)
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

    def form(next_path: str, status_code: int = 200, problem: str = "") -> HTMLResponse:
        html = renderer.login_page(next_path=next_path, session_hours=_SESSION_SECONDS // 3600, problem=problem)
        headers = {"Content-Security-Policy": ACK_CSP, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        return HTMLResponse(html, status_code, headers=headers)

    def secure(request: Request) -> bool:
        return request.url.scheme == "https" or public_url.startswith("https://")

    @router.get("/login", name="login")
    async def login_form(next_path: Annotated[str, Query(alias="next")] = "/") -> HTMLResponse:
        """The sign-in form."""
        return form(local_path(next_path))

    @router.post("/login")
    async def login(request: Request) -> Response:
        """Open a session for a valid token and go on to `next`; a wrong one gets the form again with 401."""
        fields = await read_form(request) or {}
        next_path = local_path(fields.get("next", ["/"])[0])
        client = request.client.host if request.client is not None else ""
        if attempts.exhausted(client):
            log.warning("sign_in_throttled", client=client)
            return form(next_path, 429, "Too many wrong tokens from this address: wait a few minutes and try again.")
        cookie = tokens.sign_in(fields.get("token", [""])[0].strip())
        if cookie is None:
            attempts.record(client)
            log.info("sign_in_refused", client=client)
            return form(next_path, 401, "This token is not valid. Paste a read or a write token and try again.")
        response = RedirectResponse(next_path, 303)
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=_SESSION_SECONDS,
            path="/",
            secure=secure(request),
            httponly=True,
            samesite="strict",
        )
        log.info("signed_in", client=client)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> RedirectResponse:
        """End this browser's session (forget the cookie) and show the sign-in form."""
        response = RedirectResponse(request.url_for("login").path, 303)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=secure(request), httponly=True, samesite="strict")
        return response

    async def to_login(request: Request, _: Exception) -> RedirectResponse:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        query = urlencode({"next": back}) if request.method in ("GET", "HEAD") else ""
        return RedirectResponse(request.url_for("login").path + (f"?{query}" if query else ""), 303)

    app.include_router(router)
    app.add_exception_handler(SignInRequired, to_login)
