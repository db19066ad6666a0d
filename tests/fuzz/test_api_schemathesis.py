"""The reporter's HTTP surface under hostile input (issue 18).

- Every operation of the OpenAPI document, fuzzed by schemathesis with a valid token (schema-valid and -invalid
  inputs alike): no 5xx, and every answer conforms to the document (status, content type, headers, body).
- The dashboard's pages and forms, which the document leaves out, fuzzed with hypothesis: no 5xx.
- Every route the app serves, enumerated from the app itself so that a new route is covered without editing this
  file: without a token (or with a wrong one) it is 401, or, for a dashboard page, a redirect to `/login`; with a
  read token every POST is 403. Only the routes in PUBLIC answer anyone, each for a reason given there.
"""

import asyncio
import base64
import hashlib
import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import hypothesis.strategies as st
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from hypothesis import HealthCheck, given, settings

from services.reporter.adapters.page_params import AlarmQuery, CertificateQuery
from tests.fuzz.reporter_app import HOSTS, seeded_app
from tests.unit.reporter.reporter_app import READ, WRITE

#: Routes that answer without a sign-in, and why: probes and Prometheus scrape without secrets, the document
#: describes the API, signing in cannot need one, and an acknowledge link's token is its own credential.
PUBLIC = {
    ("GET", "/healthz/live"),
    ("GET", "/healthz/ready"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("HEAD", "/openapi.json"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/ack/{token}"),
    ("POST", "/ack/{token}"),
}
#: Enough examples per operation to reach each parameter's edge cases; the whole file runs in well under a minute.
EXAMPLES = 40
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SCHEMATHESIS = {
    # The API ignores query parameters it does not know, as most do: sending some is not invalid input here.
    "generation": {"allow-extra-parameters": False},
    # A query string is text: a repeated or "null" value of a text parameter is text too, so the check that
    # schema-invalid input is refused would flag what is fine. Invalid input is still sent, and checked for 5xx
    # and for answers the document does not describe.
    "checks": {"negative_data_rejection": {"enabled": False}},
    # An alarms cursor is opaque: one the app never gave is a documented 400, not a valid request refused.
    "operations": [
        {
            "include-path": "/api/v1/alarms",
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "403", "404"]}},
        }
    ],
}


#: The reports bucket's folder, for as long as this module is loaded (schemathesis needs its app at import).
_BUCKET = tempfile.TemporaryDirectory(prefix="certmon-fuzz-reports-")
APP = seeded_app(Path(_BUCKET.name))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=schemathesis.Config.from_dict(SCHEMATHESIS))


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return APP


class Client:
    """A blocking client on the app in this process, for hypothesis's synchronous tests: it follows no redirect,
    and what the app does not handle is raised here."""

    def __init__(self, app: FastAPI, runner: asyncio.Runner) -> None:
        self._runner = runner
        transport = httpx.ASGITransport(app=app)
        self._client = httpx.AsyncClient(transport=transport, base_url="http://reporter", timeout=10)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._runner.run(self._client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        self._runner.run(self._client.aclose())


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[Client]:
    with asyncio.Runner() as runner:
        client = Client(app, runner)
        yield client
        client.close()


@schema.parametrize()
@FUZZ
def test_every_operation_answers_within_its_document(case: schemathesis.Case[Any]) -> None:
    """With a write token (which may do everything) no input makes a 5xx or an answer the document does not
    describe; schemathesis also sends each operation without the token and expects it refused."""
    case.call_and_validate(headers=WRITE)


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path template) the app serves, through every included router."""
    found = set()
    for route in iter_route_contexts(app.routes):
        for method in route.methods or ():
            assert route.path_format is not None
            found.add((method, route.path_format))
    return sorted(found)


def _concrete(path: str) -> str:
    """`path` with each of its parameters filled in."""
    return re.sub(r"\{[^}]*\}", "open1", path)


def test_the_public_routes_are_routes_of_the_app(app: FastAPI) -> None:
    """PUBLIC names only routes that exist: one that went away must leave the list, not linger as an exception."""
    assert set(_routes(app)) >= PUBLIC


@pytest.mark.parametrize("credentials", [{}, {"Authorization": "Bearer not-a-token"}], ids=["none", "wrong"])
def test_every_route_refuses_a_request_not_signed_in(app: FastAPI, client: Client, credentials: dict[str, str]) -> None:
    """401 with a bearer challenge, or, for a page a browser opens, a redirect to the sign-in form."""
    guarded = [(method, path) for method, path in _routes(app) if (method, path) not in PUBLIC]
    assert ("GET", "/api/v1/alarms") in guarded and ("GET", "/certificates") in guarded
    for method, path in guarded:
        answer = client.request(method, _concrete(path), headers=credentials)
        if answer.status_code == 303:
            assert method == "GET" and answer.headers["location"].startswith("/login?next="), (method, path)
        else:
            assert answer.status_code == 401, (method, path, answer.status_code)
            assert answer.headers["www-authenticate"] == "Bearer", (method, path)


def test_every_post_refuses_a_read_token(app: FastAPI, client: Client) -> None:
    """A read token reads but writes nothing: every guarded POST is 403, whatever its body."""
    posts = [path for method, path in _routes(app) if method == "POST" and (method, path) not in PUBLIC]
    assert "/api/v1/alarms/{alarm_id}/ack" in posts and "/alarms/{alarm_id}/ack" in posts
    for path in posts:
        for body in ({"json": {"by": "sam@example.com"}}, {"data": {"comment": "x"}}):
            assert client.post(_concrete(path), headers=READ, **body).status_code == 403, (path, body)


# Values a query string or a path may carry: text of any kind, numbers, dates, the seeded ids, and cursors that
# decode (base64url JSON) to the right or the wrong shapes.
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
_CURSORS = _JSON.map(lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).decode().rstrip("="))
_VALUES = st.one_of(
    st.text(max_size=40),
    st.integers().map(str),
    st.floats().map(str),
    st.dates().map(str),
    st.sampled_from(["open1", "acked1", "gone1", "ok", "critical", "expiry", "target", *HOSTS]),
    _CURSORS,
)
_PARAMS = sorted({*CertificateQuery.model_fields, *AlarmQuery.model_fields, "sort", "ack", "next"})
_QUERIES = st.dictionaries(st.sampled_from(_PARAMS) | st.text(max_size=8), _VALUES, max_size=5)


def _page_routes(app: FastAPI) -> list[str]:
    """The dashboard's GET pages: every signed-in GET outside the API."""
    return [p for m, p in _routes(app) if m == "GET" and not p.startswith("/api/") and (m, p) not in PUBLIC]


@FUZZ
@given(data=st.data())
def test_the_dashboard_pages_answer_any_query_without_a_server_error(
    app: FastAPI, client: Client, data: st.DataObject
) -> None:
    """Every page, with path parameters and a query string of any kind, answers below 500."""
    path = data.draw(st.sampled_from(_page_routes(app)))
    filled = re.sub(r"\{[^}]*\}", lambda _: quote(data.draw(_VALUES.filter(bool)), safe=""), path)
    answer = client.get(filled, params=data.draw(_QUERIES), headers=READ)
    assert answer.status_code < 500, (filled, answer.status_code)


@FUZZ
@given(alarm_id=_VALUES.filter(bool), form=st.dictionaries(st.sampled_from(["comment", "csrf_token"]), _VALUES))
def test_the_acknowledge_form_answers_any_body_without_a_server_error(
    client: Client, alarm_id: str, form: dict[str, str]
) -> None:
    """The dashboard's acknowledge form, with a write token and any form, answers below 500."""
    answer = client.post(f"/alarms/{quote(alarm_id, safe='')}/ack", data=form, headers=WRITE)
    assert answer.status_code < 500, (alarm_id, answer.status_code)


# What the fuzzing found, each pinned down.


@pytest.mark.parametrize("key", ["x" * 300, "daily/" + "y" * 300 + ".html", "a%00b.html"], ids=["long", "deep", "nul"])
def test_a_report_key_no_file_can_have_is_not_found(client: Client, key: str) -> None:
    """A key longer than a file name may be, or with a NUL, names no report: 404, not a 502 blaming the bucket
    (or an unhandled error)."""
    assert client.get(f"/reports/{key}", headers=READ).status_code == 404


def test_a_path_that_is_no_fingerprint_is_the_documented_validation_error(client: Client) -> None:
    """The fingerprint's form is in the document, and a path not of that form gets FastAPI's 422 body."""
    answer = client.get("/api/v1/certificates/not-hex", headers=READ)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["path", "fingerprint"]
    fingerprint = hashlib.sha256(b"crit.example").hexdigest().upper()
    spaced = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2))
    assert client.get(f"/api/v1/certificates/{quote(spaced)}", headers=READ).status_code == 200


def test_the_document_describes_the_guards_answers(app: FastAPI) -> None:
    """Every API operation documents the 401 of a missing token; a POST also the 403 of a read token and the
    400 of a body that is no JSON."""
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            if path.startswith("/api/"):
                assert "401" in operation["responses"], (method, path)
            if method == "post":
                assert {"400", "403"} <= set(operation["responses"]), path
