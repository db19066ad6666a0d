"""The reporter's HTML answers (`html_page`, under one Content-Security-Policy) and the acknowledge links.

The dashboard's pages (`adapters.dashboard_pages`) need a sign-in, as the API does. `/ack/{token}` needs none:
the signed token is the credential. Its GET only shows the alarm and a form, because mail scanners follow links;
the form's POST acknowledges, as the recipient the link names.
"""

from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from services.reporter.adapters.rendering import ReportRenderer
from services.reporter.domain.views import MAX_ACK_COMMENT, AckBody, AlarmView
from services.reporter.ports import HistoryStore
from services.reporter.service_layer.acknowledging import Acknowledger, standing
from services.reporter.service_layer.queries import load_alarm
from shared.action_links import AckLink, ActionLinkSigner, InvalidLink
from shared.clock import Clock

log = structlog.get_logger(__name__)

#: The pages are self-contained: nothing may load from anywhere, styles are inline, no script runs, and forms go
#: only back to the reporter (form-action does not fall back to default-src).
DASHBOARD_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: The acknowledge-link and sign-in pages answer under the same policy.
ACK_CSP = DASHBOARD_CSP
#: A comment of MAX_ACK_COMMENT characters, each up to 4 UTF-8 bytes percent-encoded, and room for the field name.
MAX_FORM_BYTES = MAX_ACK_COMMENT * 12 + 64

_LINK_PROBLEM_STATUS = {"malformed": 400, "altered": 400, "expired": 410}
_OUTCOME_STATUS = {"unknown": 404, "resolved": 409, "already": 200, "acknowledged": 200, "accepted": 202}


def html_page(html: str, status_code: int = 200) -> HTMLResponse:
    """An HTML answer under DASHBOARD_CSP, never cached (pages show live state and who may act)."""
    headers = {"Content-Security-Policy": DASHBOARD_CSP, "Cache-Control": "no-store"}
    return HTMLResponse(html, status_code, headers=headers)


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
        response = html_page(html, status_code)
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
