"""Signing in from a browser: `/login` and its session cookie, the redirect of pages, the trusted proxy header, and
the CSRF token that every write from a browser carries."""

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from pydantic import SecretStr

from services.reporter.adapters.auth import ApiTokens
from services.reporter.adapters.http import create_app
from services.reporter.adapters.memory import InMemoryHistory
from services.reporter.adapters.rendering import ReportRenderer
from services.reporter.adapters.sessions import SESSION_COOKIE, SESSION_LIFETIME, SessionSigner
from services.reporter.adapters.signin import FAILED_ATTEMPTS_LIMIT, FAILED_ATTEMPTS_WINDOW, add_sign_in, local_path
from shared.settings import Settings
from tests.support.alarms import ManualClock
from tests.unit.reporter.reporter_app import LINKS, READ_TOKEN, WRITE, WRITE_TOKEN, store_alarms
from tests.unit.reporter.reporter_factories import NOW

SESSIONS = SessionSigner(b"session-key-for-the-reporter-tests")
PROXY_HEADER = "X-Forwarded-User"


def settings(
    *, tokens: tuple[str, ...] = (READ_TOKEN,), write_tokens: tuple[str, ...] = (WRITE_TOKEN,), **values: Any
) -> Settings:
    """Settings with these read and write tokens, and any other values."""
    return Settings(
        api_tokens=[SecretStr(t) for t in tokens], api_write_tokens=[SecretStr(t) for t in write_tokens], **values
    )


@asynccontextmanager
async def reporter(
    configured: Settings, clock: ManualClock, *, base_url: str = "http://reporter"
) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the whole reporter app over a history with three alarms (`open1` among them)."""
    history = InMemoryHistory()
    await store_alarms(history)
    app = create_app(history, configured, links=LINKS, sessions=SESSIONS, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url) as client:
        yield client


@asynccontextmanager
async def form_app(configured: Settings, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app with sign-in and one page, `/probe`: GET it to read `request.state.viewer`, POST it as a
    form route of the dashboard does (`tokens.require("write")`)."""
    tokens = ApiTokens(configured, sessions=SESSIONS, clock=clock)
    app = FastAPI()
    add_sign_in(app, tokens, ReportRenderer(), public_url=configured.public_url, clock=clock)

    @app.get("/probe", dependencies=[Depends(tokens.require("read", redirect=True))])
    async def show(request: Request) -> dict[str, Any]:
        return asdict(request.state.viewer)

    @app.post("/probe", dependencies=[Depends(tokens.require("read", redirect=True)), Depends(tokens.require("write"))])
    async def write(request: Request) -> dict[str, str]:
        return {"by": request.state.viewer.name or "token"}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://reporter") as client:
        yield client


@pytest.fixture
def clock() -> ManualClock:
    """The reporter's clock, stopped at NOW until a test moves it."""
    return ManualClock(NOW)


async def sign_in(client: httpx.AsyncClient, token: str, next_path: str = "/") -> dict[str, str]:
    """Post `token` to `/login`; the Cookie header of the session it opened."""
    response = await client.post("/login", data={"token": token, "next": next_path})
    assert response.status_code == 303, response.text
    value = response.cookies[SESSION_COOKIE]
    client.cookies.clear()  # each request below says which cookie it sends
    return {"Cookie": f"{SESSION_COOKIE}={value}"}


async def viewer(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """The viewer `/probe` sees for a request with `headers`."""
    response = await client.get("/probe", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_login_form_posts_only_back_to_the_reporter(clock: ManualClock) -> None:
    """`GET /login` is a self-contained form with a `token` field and `next`, under a CSP with form-action 'self'."""
    async with reporter(settings(), clock) as client:
        response = await client.get("/login", params={"next": "/alarms/open1"})
    assert response.status_code == 200
    assert "form-action 'self'" in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert 'name="token"' in response.text and 'type="password"' in response.text
    assert 'name="next" value="/alarms/open1"' in response.text
    assert "<script" not in response.text and "action=" not in response.text


async def test_a_valid_token_sets_a_strict_httponly_session_cookie_and_goes_on_to_next(clock: ManualClock) -> None:
    """A read token opens a 12-hour session (HttpOnly, SameSite=Strict, Path=/, not Secure over plain HTTP) and
    answers 303 to `next`; the cookie holds no token."""
    async with reporter(settings(), clock) as client:
        response = await client.post("/login", data={"token": READ_TOKEN, "next": "/alarms/open1?x=1"})
    assert response.status_code == 303
    assert response.headers["location"] == "/alarms/open1?x=1"
    attributes = [a.strip().lower() for a in response.headers["set-cookie"].split(";")]
    assert {"httponly", "samesite=strict", "path=/", f"max-age={int(SESSION_LIFETIME.total_seconds())}"} <= set(
        attributes
    )
    assert "secure" not in attributes
    payload = response.cookies[SESSION_COOKIE].split(".")[0]
    session = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert session["s"] == "read" and session["e"] == int((NOW + SESSION_LIFETIME).timestamp())
    assert READ_TOKEN not in json.dumps(session) and READ_TOKEN not in response.headers["set-cookie"]


@pytest.mark.parametrize(
    ("base_url", "public_url"),
    [("https://reporter", "http://127.0.0.1:8080"), ("http://reporter", "https://certmon.example.com")],
)
async def test_the_cookie_is_secure_over_https(clock: ManualClock, base_url: str, public_url: str) -> None:
    """The cookie is Secure when the request came over HTTPS, or the public URL is https (TLS ends at a proxy)."""
    async with reporter(settings(public_url=public_url), clock, base_url=base_url) as client:
        response = await client.post("/login", data={"token": READ_TOKEN})
    assert response.status_code == 303
    assert "secure" in [a.strip().lower() for a in response.headers["set-cookie"].split(";")]


async def test_the_session_cookie_lets_the_pages_through(clock: ManualClock) -> None:
    """With the cookie, the dashboard and an alarm's page answer 200, and reading the API works too."""
    async with reporter(settings(), clock) as client:
        cookie = await sign_in(client, READ_TOKEN)
        for path in ("/", "/alarms/open1", "/api/v1/alarms"):
            assert (await client.get(path, headers=cookie)).status_code == 200, path


async def test_a_page_without_sign_in_goes_to_login_and_the_api_answers_401(clock: ManualClock) -> None:
    """A page asked for without credentials is a 303 to `/login?next=<the page>`; the API stays 401 JSON."""
    async with reporter(settings(), clock) as client:
        page = await client.get("/alarms/open1", params={"x": "1"})
        api = await client.get("/api/v1/alarms")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Falarms%2Fopen1%3Fx%3D1"
    assert api.status_code == 401
    assert api.headers["content-type"] == "application/json"


async def test_a_wrong_token_gets_the_form_again_with_401(clock: ManualClock) -> None:
    """An unknown token sets no cookie and shows the form with a message and the same `next`."""
    async with reporter(settings(), clock) as client:
        response = await client.post("/login", data={"token": "not-a-token", "next": "/alarms/open1"})
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert "This token is not valid" in response.text
    assert 'name="next" value="/alarms/open1"' in response.text


async def test_wrong_tokens_are_bounded_per_address(clock: ManualClock) -> None:
    """After the limit of wrong tokens even the right one is refused with 429, until the window has passed."""
    async with reporter(settings(), clock) as client:
        for _ in range(FAILED_ATTEMPTS_LIMIT):
            assert (await client.post("/login", data={"token": "guess"})).status_code == 401
        throttled = await client.post("/login", data={"token": READ_TOKEN})
        assert throttled.status_code == 429
        assert "set-cookie" not in throttled.headers
        clock.advance(seconds=FAILED_ATTEMPTS_WINDOW.total_seconds() + 1)
        assert (await client.post("/login", data={"token": READ_TOKEN})).status_code == 303


async def test_a_tampered_cookie_is_refused(clock: ManualClock) -> None:
    """A cookie whose payload was changed (say, read made write) or that we never signed sends the page to /login."""
    async with reporter(settings(), clock) as client:
        value = (await sign_in(client, READ_TOKEN))["Cookie"].partition("=")[2]
        payload, _, signature = value.partition(".")
        session = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        forged = base64.urlsafe_b64encode(json.dumps({**session, "s": "write"}).encode()).decode().rstrip("=")
        for cookie in (f"{forged}.{signature}", f"{payload}.{signature[:-2]}xx", "garbage"):
            response = await client.get("/", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})
            assert response.status_code == 303, cookie


async def test_a_session_ends_after_its_lifetime(clock: ManualClock) -> None:
    """The session works one second before its end and sends the page to /login from its end on."""
    async with reporter(settings(), clock) as client:
        cookie = await sign_in(client, READ_TOKEN)
        clock.advance(seconds=SESSION_LIFETIME.total_seconds() - 1)
        assert (await client.get("/", headers=cookie)).status_code == 200
        clock.advance(seconds=1)
        assert (await client.get("/", headers=cookie)).status_code == 303


async def test_removing_a_token_ends_its_sessions(clock: ManualClock) -> None:
    """A session opened with a token no longer configured is refused; one whose token is still there is not."""
    async with reporter(settings(), clock) as before:
        read_session = await sign_in(before, READ_TOKEN)
        write_session = await sign_in(before, WRITE_TOKEN)
    async with reporter(settings(write_tokens=()), clock) as after:
        assert (await after.get("/", headers=write_session)).status_code == 303
        assert (await after.get("/", headers=read_session)).status_code == 200


async def test_a_write_session_whose_token_became_read_only_may_only_read(clock: ManualClock) -> None:
    """A write session's token moved to the read tokens: the session still reads, but may not write."""
    async with form_app(settings(), clock) as client:
        session = await sign_in(client, WRITE_TOKEN)
    async with form_app(settings(tokens=(READ_TOKEN, WRITE_TOKEN), write_tokens=()), clock) as client:
        seen = await viewer(client, session)
        assert seen["can_write"] is False
        response = await client.post("/probe", data={"csrf_token": seen["csrf_token"]}, headers=session)
        assert response.status_code == 403


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "/\t/evil.example/",
        "javascript:alert(1)",
        "evil.example",
        "",
    ],
)
async def test_next_cannot_send_anyone_off_the_site(clock: ManualClock, target: str) -> None:
    """A `next` that is not a path on this site becomes `/`, in the form and in the redirect after signing in."""
    async with reporter(settings(), clock) as client:
        form = await client.get("/login", params={"next": target})
        response = await client.post("/login", data={"token": READ_TOKEN, "next": target})
    assert 'name="next" value="/"' in form.text
    assert response.headers["location"] == "/"


def test_a_local_path_with_its_query_is_kept() -> None:
    """A path on this site, with a query, is followed as given."""
    assert local_path("/certificates?level=critical&q=a%2Fb") == "/certificates?level=critical&q=a%2Fb"


async def test_logout_forgets_the_cookie(clock: ManualClock) -> None:
    """`POST /logout` expires the cookie with the same attributes and shows the sign-in form."""
    async with reporter(settings(), clock) as client:
        cookie = await sign_in(client, READ_TOKEN)
        response = await client.post("/logout", headers=cookie)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    attributes = [a.strip().lower() for a in response.headers["set-cookie"].split(";")]
    assert attributes[0] == f'{SESSION_COOKIE}=""' and "max-age=0" in attributes
    assert {"httponly", "samesite=strict", "path=/"} <= set(attributes)


async def test_a_browser_write_needs_the_sessions_csrf_token(clock: ManualClock) -> None:
    """A write session's form POST is 403 without the CSRF token, with a wrong one, or with another session's;
    with its own it goes through."""
    async with form_app(settings(), clock) as client:
        session = await sign_in(client, WRITE_TOKEN)
        other = await sign_in(client, WRITE_TOKEN)
        token = (await viewer(client, session))["csrf_token"]
        other_token = (await viewer(client, other))["csrf_token"]
        assert token != other_token
        for form in ({}, {"csrf_token": "wrong"}, {"csrf_token": other_token}):
            response = await client.post("/probe", data=form, headers=session)
            assert response.status_code == 403, form
            assert "CSRF" in response.json()["detail"]
        assert (await client.post("/probe", data={"csrf_token": token}, headers=session)).status_code == 200


async def test_a_read_session_cannot_write(clock: ManualClock) -> None:
    """A session opened with a read token gets 403 on a form POST, its CSRF token notwithstanding."""
    async with form_app(settings(), clock) as client:
        session = await sign_in(client, READ_TOKEN)
        seen = await viewer(client, session)
        assert (seen["can_write"], seen["name"], seen["via"]) == (False, None, "session")
        response = await client.post("/probe", data={"csrf_token": seen["csrf_token"]}, headers=session)
    assert response.status_code == 403


async def test_a_bearer_write_token_writes_without_a_csrf_token(clock: ManualClock) -> None:
    """A write token in `Authorization` posts the form without a CSRF token: no browser adds that header itself."""
    async with form_app(settings(), clock) as client:
        response = await client.post("/probe", data={"comment": "x"}, headers=WRITE)
    assert response.status_code == 200


async def test_a_json_body_needs_no_csrf_token(clock: ManualClock) -> None:
    """A write session may post JSON without a CSRF token (no other site can send JSON without a preflight); the
    same body as text/plain, which any site can send, is 403."""
    async with form_app(settings(), clock) as client:
        session = await sign_in(client, WRITE_TOKEN)
        assert (await client.post("/probe", json={"by": "x"}, headers=session)).status_code == 200
        plain = {**session, "Content-Type": "text/plain"}
        assert (await client.post("/probe", content=b'{"by": "x"}', headers=plain)).status_code == 403


async def test_the_trusted_header_signs_in_its_user(clock: ManualClock) -> None:
    """With CERTMON_TRUSTED_USER_HEADER set, its value is the viewer: read by default, write for the users listed,
    and a form POST still takes the CSRF token; without the header a page goes to /login."""
    configured = settings(trusted_user_header=PROXY_HEADER, trusted_write_users=["bob@example.com"])
    async with form_app(configured, clock) as client:
        alice = {PROXY_HEADER: "alice@example.com"}
        bob = {PROXY_HEADER: "bob@example.com"}
        seen_alice, seen_bob = await viewer(client, alice), await viewer(client, bob)
        assert (seen_alice["name"], seen_alice["can_write"], seen_alice["via"]) == ("alice@example.com", False, "proxy")
        assert (seen_bob["name"], seen_bob["can_write"]) == ("bob@example.com", True)
        assert (
            await client.post("/probe", data={"csrf_token": seen_alice["csrf_token"]}, headers=alice)
        ).status_code == 403
        assert (await client.post("/probe", data={}, headers=bob)).status_code == 403
        assert (
            await client.post("/probe", data={"csrf_token": seen_alice["csrf_token"]}, headers=bob)
        ).status_code == 403
        written = await client.post("/probe", data={"csrf_token": seen_bob["csrf_token"]}, headers=bob)
        assert (written.status_code, written.json()) == (200, {"by": "bob@example.com"})
        assert (await client.get("/probe")).status_code == 303
        assert (await client.get("/probe", headers={PROXY_HEADER: "  "})).status_code == 303


async def test_the_trusted_header_alone_closes_the_dashboard(clock: ManualClock) -> None:
    """A trusted header and no token: the dashboard is not open, a request without the header is not signed in."""
    configured = settings(tokens=(), write_tokens=(), trusted_user_header=PROXY_HEADER)
    async with reporter(configured, clock) as client:
        assert (await client.get("/")).status_code == 303
        assert (await client.get("/api/v1/alarms")).status_code == 401
        assert (await client.get("/", headers={PROXY_HEADER: "alice@example.com"})).status_code == 200


async def test_without_tokens_pages_are_open_and_forms_still_take_the_csrf_token(clock: ManualClock) -> None:
    """No token configured: pages answer 200 and everyone may write, but a form POST still needs the CSRF token."""
    async with reporter(settings(tokens=(), write_tokens=()), clock) as client:
        assert (await client.get("/")).status_code == 200
        assert (await client.get("/alarms/open1")).status_code == 200
    async with form_app(settings(tokens=(), write_tokens=()), clock) as client:
        seen = await viewer(client, {})
        assert (seen["can_write"], seen["name"], seen["via"]) == (True, None, "open")
        assert seen["csrf_token"]
        assert (await client.post("/probe", data={})).status_code == 403
        assert (await client.post("/probe", data={"csrf_token": seen["csrf_token"]})).status_code == 200
