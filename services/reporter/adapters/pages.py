"""The reporter's HTML side: the dashboard, its certificate and alarm pages, and the acknowledge links.

The dashboard and its pages need a read token, as the API does. `/ack/{token}` needs none: the signed token is
the credential. Its GET only shows the alarm and a form, because mail scanners follow links; the form's POST
acknowledges, as the recipient the link names.
"""

from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, Request
from fastapi.params import Depends
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from services.reporter.adapters.rendering import ReportRenderer
from services.reporter.domain.report import build_status_report, normalize_fingerprint
from services.reporter.domain.views import MAX_ACK_COMMENT, AckBody, AlarmView
from services.reporter.ports import HistoryStore
from services.reporter.service_layer.acknowledging import Acknowledger, standing
from services.reporter.service_layer.queries import certificate_detail, load_alarm
from shared.action_links import AckLink, ActionLinkSigner, InvalidLink
from shared.clock import Clock

log = structlog.get_logger(__name__)

#: The pages are self-contained: nothing may load from anywhere, styles are inline, no script runs.
DASHBOARD_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
#: form-action does not fall back to default-src: the acknowledge form may post only back to the reporter.
ACK_CSP = f"{DASHBOARD_CSP}; form-action 'self'"
#: A comment of MAX_ACK_COMMENT characters, each up to 4 UTF-8 bytes percent-encoded, and room for the field name.
MAX_FORM_BYTES = MAX_ACK_COMMENT * 12 + 64

_LINK_PROBLEM_STATUS = {"malformed": 400, "altered": 400, "expired": 410}
_OUTCOME_STATUS = {"unknown": 404, "resolved": 409, "already": 200, "acknowledged": 200, "accepted": 202}


def _page(html: str, status_code: int = 200, *, csp: str = DASHBOARD_CSP) -> HTMLResponse:
    return HTMLResponse(html, status_code, headers={"Content-Security-Policy": csp, "Cache-Control": "no-store"})


def dashboard_routes(
    history: HistoryStore, renderer: ReportRenderer, *, clock: Clock, dependencies: list[Depends]
) -> APIRouter:
    """`/`, `/certificates/{fingerprint}` and `/alarms/{alarm_id}`, behind `dependencies` (the read token)."""
    router = APIRouter(dependencies=dependencies, include_in_schema=False, default_response_class=HTMLResponse)

    def not_found(what: str) -> HTMLResponse:
        return _page(renderer.message_page("Not found", f"certmon knows no such {what}."), 404)

    @router.get("/")
    async def dashboard() -> HTMLResponse:
        """The live dashboard: every certificate, most urgent first."""
        report = build_status_report(await history.latest(), [e for _, e in await history.alarm_events()], now=clock())
        return _page(renderer.dashboard(report))

    @router.get("/certificates/{fingerprint}")
    async def certificate(fingerprint: str) -> HTMLResponse:
        """One certificate: names, validity, where it is served, latest findings, alarms."""
        canonical = normalize_fingerprint(fingerprint)
        detail = await certificate_detail(history, canonical) if canonical is not None else None
        return not_found("certificate") if detail is None else _page(renderer.certificate_page(detail))

    @router.get("/alarms/{alarm_id}")
    async def alarm(alarm_id: str) -> HTMLResponse:
        """One alarm: its facts and acknowledgement, history, notifications."""
        view = await load_alarm(history, alarm_id)
        return not_found("alarm") if view is None else _page(renderer.alarm_page(view))

    return router


def ack_link_routes(
    history: HistoryStore,
    renderer: ReportRenderer,
    *,
    acknowledger: Acknowledger,
    links: ActionLinkSigner,
    clock: Clock,
) -> APIRouter:
    """`GET /ack/{token}` (the confirmation page) and `POST /ack/{token}` (acknowledge), needing no API token."""
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

    def answer(
        status: str, status_code: int, alarm: AlarmView | None, *, recipient: str = "", problem: str = ""
    ) -> HTMLResponse:
        html = renderer.ack_page(status, alarm=alarm, recipient=recipient, problem=problem)
        response = _page(html, status_code, csp=ACK_CSP)
        # The token is a credential: no Referer may carry it to another site.
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def verified(token: str) -> AckLink | HTMLResponse:
        try:
            return links.verify(token, now=clock())
        except InvalidLink as exc:
            log.info("ack_link_refused", reason=exc.reason)
            return answer(exc.reason, _LINK_PROBLEM_STATUS[exc.reason], None, problem=str(exc))

    @router.get("/ack/{token}")
    async def confirm(token: str) -> HTMLResponse:
        """The alarm and a form to acknowledge it; changes nothing."""
        link = verified(token)
        if isinstance(link, HTMLResponse):
            return link
        alarm = await load_alarm(history, link.alarm_id)
        refused = standing(alarm)
        if refused is not None:
            return answer(refused, _OUTCOME_STATUS[refused], alarm)
        return answer("confirm", 200, alarm, recipient=link.recipient)

    @router.post("/ack/{token}")
    async def acknowledge(token: str, request: Request) -> HTMLResponse:
        """Acknowledge as the link's recipient, with the form's optional comment; shows what became of it."""
        link = verified(token)
        if isinstance(link, HTMLResponse):
            return link
        form = await _form(request)
        if form is None:
            return answer("invalid", 413, None, problem="The form was too large")
        comment = (form.get("comment", [""])[0]).strip() or None
        try:
            body = AckBody(by=link.recipient, comment=comment)
        except ValidationError:
            return answer("invalid", 422, None, problem=f"A comment has at most {MAX_ACK_COMMENT} characters")
        outcome = await acknowledger.acknowledge(link.alarm_id, by=body.by, comment=body.comment, via="link")
        return answer(outcome.status, _OUTCOME_STATUS[outcome.status], outcome.alarm, recipient=link.recipient)

    return router


async def _form(request: Request) -> dict[str, list[str]] | None:
    """The url-encoded form of a request, or None if its body is larger than MAX_FORM_BYTES."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    return parse_qs(body.decode("utf-8", errors="replace"))
