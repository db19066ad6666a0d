"""A certificate's page: chain as presented and verified, findings, grade caps, targets, owners and rules,
history, alarms with their notifications and acknowledgements, and the acknowledge form for those who may write."""

import re
from datetime import timedelta

import httpx
import pytest

from services.reporter.adapters.memory import InMemoryHistory
from services.reporter.adapters.sessions import SESSION_COOKIE
from services.reporter.domain.certificate_view import chain_view
from shared.events import (
    ChainInfo,
    Finding,
    NotificationResult,
    OwnerRef,
    PresentedCertificate,
    SecurityCap,
    TargetRef,
)
from shared.events.evaluation import KeyInfo
from tests.unit.reporter.html_tables import body_rows, text_of
from tests.unit.reporter.reporter_app import JANE, READ, WRITE, WRITE_TOKEN, answer_requests, client_on, requests
from tests.unit.reporter.reporter_factories import NOW, alarm, evaluation
from tests.unit.reporter.test_reporter_pages import assert_self_contained

_base = evaluation(
    "shop.example",
    days=5,
    level="critical",
    grade="B",
    subject="CN=<i>shop</i>",
    findings=[
        Finding(code="expiry.within_7_days", severity="critical", message="expires in 5 days"),
        Finding(code="chain.incomplete", severity="critical", message="<b>intermediate</b> missing"),
    ],
)
assert _base.certificate is not None and _base.security is not None
LEAF = _base.certificate
FINGERPRINT = LEAF.fingerprint_sha256
INTERMEDIATE, ROOT = "1a" * 32, "2b" * 32
SHOP = _base.model_copy(
    update={
        "chain": ChainInfo(
            presented=[
                PresentedCertificate(
                    fingerprint_sha256=FINGERPRINT, subject=LEAF.subject, issuer=LEAF.issuer, not_after=LEAF.not_after
                ),
            ],
            complete=True,
            trusted=True,
            verified_path=[FINGERPRINT, INTERMEDIATE, ROOT],
            completed_from="aia",
        ),
        "security": _base.security.model_copy(
            update={"caps": [SecurityCap(grade="B", reason="incomplete chain: the intermediate came from AIA")]}
        ),
    }
)
MIRROR = SHOP.model_copy(
    update={"target": TargetRef(host="mirror.example", port=443, sni="shop.example"), "target_key": "mirror:443"}
)
OWNER = OwnerRef(name="shop-team", email=["shop@example.com"], rule="certificate[0] san=*.example")


@pytest.fixture
async def history() -> InMemoryHistory:
    """SHOP first seen at warning, then critical, also served by a mirror; its expiry alarm raised to the shop
    team, mailed, and a resolved chain alarm acknowledged by Jane before."""
    history = InMemoryHistory()
    first = SHOP.model_copy(
        update={"evaluated_at": NOW - timedelta(days=2), "alarm": SHOP.alarm.model_copy(update={"level": "warning"})}
    )
    for event_id, item in (("e1", first), ("e2", SHOP), ("e3", MIRROR)):
        await history.record_evaluation(event_id, item)
    raised = alarm("shop1", "raised", "critical", NOW - timedelta(hours=2), "shop.example", FINGERPRINT)
    await history.record_alarm("a1", raised.model_copy(update={"owners": [OWNER]}))
    mailed = NotificationResult(
        alarm_id="shop1", alarm_event_id="a1", channel="email", recipient="shop@example.com", attempt=1, at=NOW
    )
    await history.record_notification("n1", mailed, ok=True)
    old = alarm("old1", "raised", "warning", NOW - timedelta(days=5), "shop.example", FINGERPRINT)
    acked = alarm(
        "old1",
        "acknowledged",
        "warning",
        JANE.at - timedelta(days=4),
        "shop.example",
        FINGERPRINT,
        acknowledgement=JANE,
    )
    await history.record_alarm("o1", old)
    await history.record_alarm("o2", acked)
    await history.record_alarm(
        "o3", alarm("old1", "resolved", "ok", NOW - timedelta(days=1), "shop.example", FINGERPRINT)
    )
    return history


async def test_the_chain_is_shown_as_presented_and_as_verified(client: httpx.AsyncClient) -> None:
    """The presented chain has the leaf with its key and signature; the verified path says where each came from."""
    page = (await client.get(f"/certificates/{FINGERPRINT}", headers=READ)).text
    presented = body_rows(page, "chain-presented")
    assert len(presented) == 1
    assert presented[0][1] == "CN=<i>shop</i> (leaf)"
    assert presented[0][5:8] == ["EC 256 bits (secp256r1)", "ecdsa-with-SHA256", "sent by the server"]
    verified = body_rows(page, "chain-verified")
    assert [row[7] for row in verified] == ["sent by the server", "fetched (AIA)", "trust store"]
    assert "complete, trusted, in order" in text_of(page, "chain")


def test_each_presented_certificate_shows_its_validity_key_and_signature() -> None:
    """An intermediate the server sent shows its own validity, key and signature; one recorded before those fields
    existed shows what is known and nothing invented."""
    sent = PresentedCertificate(
        fingerprint_sha256=INTERMEDIATE,
        subject="CN=Example Intermediate",
        issuer="CN=Example Root",
        not_before=NOW - timedelta(days=400),
        not_after=NOW + timedelta(days=3000),
        serial="1f",
        key=KeyInfo(type="RSA", bits=4096),
        signature_algorithm="sha384WithRSAEncryption",
    )
    old = PresentedCertificate(fingerprint_sha256="3c" * 32, subject="CN=Old", issuer="CN=Root", not_after=NOW)
    view = chain_view(SHOP.model_copy(update={"chain": SHOP.chain.model_copy(update={"presented": [sent, old]})}))
    middle, legacy = view.presented
    assert (middle.not_before, middle.key, middle.signature_algorithm, middle.leaf) == (
        NOW - timedelta(days=400),
        "RSA 4096 bits",
        "sha384WithRSAEncryption",
        False,
    )
    assert (legacy.not_before, legacy.key, legacy.signature_algorithm) == (None, None, None)
    assert view.verified[1].key == "RSA 4096 bits"


async def test_findings_grade_caps_and_facts_are_shown_escaped(client: httpx.AsyncClient) -> None:
    """Every finding with its message, the grade with the reason of each cap, the leaf's key and names; the
    attacker-chosen subject and message stay text."""
    response = await client.get(f"/certificates/{FINGERPRINT.upper()}", headers=READ)
    assert response.status_code == 200
    assert_self_contained(response)
    page = response.text
    assert "<i>shop</i>" not in page and "CN=&lt;i&gt;shop&lt;/i&gt;" in page
    assert "<b>intermediate</b>" not in page and "&lt;b&gt;intermediate&lt;/b&gt; missing" in page
    assert "chain.incomplete" in text_of(page, "findings")
    assert body_rows(page, "caps") == [["B", "incomplete chain: the intermediate came from AIA"]]
    facts = text_of(page, "facts")
    assert "EC 256 bits (secp256r1)" in facts and "ecdsa-with-SHA256" in facts and "2026-12-02 06:30 UTC" in facts


async def test_targets_owners_and_the_rule_that_chose_each(client: httpx.AsyncClient) -> None:
    """Both targets serving the certificate now, and the owner its alarm named with the rule that chose it."""
    page = (await client.get(f"/certificates/{FINGERPRINT}", headers=READ)).text
    assert [row[0] for row in body_rows(page, "serving")] == ["mirror:443", "shop.example:443"]
    owners = text_of(page, "owners")
    assert "shop-team" in owners and "certificate[0] san=*.example" in owners and "shop@example.com" in owners


async def test_history_lists_observations_and_level_changes(client: httpx.AsyncClient) -> None:
    """Level changes keep each target's first evaluation and the move from warning to critical."""
    page = (await client.get(f"/certificates/{FINGERPRINT}", headers=READ)).text
    changes = [(row[1], row[2]) for row in body_rows(page, "level-changes")]
    assert changes == [("shop.example:443", "critical"), ("mirror:443", "critical"), ("shop.example:443", "warning")]
    assert len(body_rows(page, "observations")) == 3


async def test_alarms_show_their_notifications_and_acknowledgements(client: httpx.AsyncClient) -> None:
    """Each alarm with its steps, the mail it caused, and Jane's acknowledgement with her comment."""
    page = (await client.get(f"/certificates/{FINGERPRINT}", headers=READ)).text
    shop = text_of(page, "alarm-shop1")
    assert "shop@example.com" in shop and "sent" in shop
    old = text_of(page, "alarm-old1")
    assert JANE.by in old and "renewal ordered" in old and "resolved" in old


async def test_the_acknowledge_form_shows_only_to_those_who_may_write(client: httpx.AsyncClient) -> None:
    """A read sign-in sees no form; a write one sees it on the open alarm only, with its CSRF token."""
    read_page = (await client.get(f"/certificates/{FINGERPRINT}", headers=READ)).text
    assert 'action="/alarms/shop1/ack"' not in read_page
    write_page = (await client.get(f"/certificates/{FINGERPRINT}", headers=WRITE)).text
    assert write_page.count('method="post" action="/alarms/') == 1
    assert 'action="/alarms/shop1/ack"' in write_page
    assert re.search(r'name="csrf_token" value="[^"]{16,}"', write_page)


async def test_a_browser_acknowledges_with_its_session_and_csrf_token(history: InMemoryHistory) -> None:
    """Signed in with a write token, the form's POST acknowledges as "dashboard" and lands on the alarm's page
    saying so; without the CSRF token the same POST is refused."""
    async with client_on(history) as client:
        login = await client.post("/login", data={"token": WRITE_TOKEN, "next": f"/certificates/{FINGERPRINT}"})
        session = {"Cookie": f"{SESSION_COOKIE}={login.cookies[SESSION_COOKIE]}"}
        client.cookies.clear()
        page = (await client.get(f"/certificates/{FINGERPRINT}", headers=session)).text
        match = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert match is not None
        refused = await client.post("/alarms/shop1/ack", data={"comment": "on it"}, headers=session)
        assert refused.status_code == 403 and requests(history) == []
        alarmer = answer_requests(history)
        done = await client.post(
            "/alarms/shop1/ack", data={"comment": "on it", "csrf_token": match.group(1)}, headers=session
        )
        await alarmer
        assert (done.status_code, done.headers["location"]) == (303, "/alarms/shop1?ack=acknowledged")
        [request] = requests(history)
        assert (request.by, request.comment, request.via) == ("dashboard", "on it", "api")
        shown = (await client.get(done.headers["location"], headers=session)).text
    assert "Acknowledged: reminders stop until its level changes." in shown
    assert "acknowledged</span> by dashboard" in shown


async def test_a_page_of_an_unknown_or_malformed_fingerprint_is_404(client: httpx.AsyncClient) -> None:
    """No evaluation of it, or no fingerprint at all: a 404 page."""
    for path in (f"/certificates/{'0' * 64}", "/certificates/not-hex"):
        response = await client.get(path, headers=READ)
        assert response.status_code == 404
        assert "certmon knows no such certificate." in response.text
