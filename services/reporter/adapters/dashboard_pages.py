"""The dashboard's pages: the overview, the certificates list and a certificate, the expiration timeline, the
alarm history and an alarm, the published reports and their objects, and the acknowledge form's POST.

Reading needs a read sign-in and acknowledging a write one (`adapters.auth`, which sets `request.state.viewer`
and checks a browser form's CSRF token). A list asked for with a bad filter value answers a 400 page that says
which value and why. Every page is self-contained under a strict Content-Security-Policy (`adapters.pages`).
"""

from collections.abc import Sequence
from urllib.parse import quote

import structlog
from fastapi import APIRouter, Request
from fastapi.params import Depends
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from services.reporter.adapters.auth import Viewer, read_form
from services.reporter.adapters.page_params import (
    AlarmQuery,
    BadQuery,
    CertificateQuery,
    ListLinks,
    encode_alarm_key,
    encode_row_key,
)
from services.reporter.adapters.pages import DASHBOARD_CSP, html_page
from services.reporter.adapters.rendering import ReportRenderer
from services.reporter.domain.report import normalize_fingerprint
from services.reporter.domain.views import MAX_ACK_COMMENT, AckBody
from services.reporter.ports import Bucket, BucketError, HistoryStore, ObjectNotFound
from services.reporter.service_layer import dashboard
from services.reporter.service_layer.acknowledging import Acknowledger
from services.reporter.service_layer.queries import load_alarm
from shared.clock import Clock

log = structlog.get_logger(__name__)

#: Reports the reports page lists, newest period first.
REPORTS_SHOWN = 200
#: Who an acknowledgement from the dashboard is by when the sign-in names nobody (a token, or no tokens at all).
DASHBOARD_ACTOR = "dashboard"
_CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
}
#: The certificates list's sortable columns and the order each one sets.
_SORTS = {"target": "target", "level": "urgency", "expiry": "expiry"}


def _viewer(request: Request) -> Viewer | None:
    """Who the sign-in guard said the request is from (None: no guard ran)."""
    viewer: Viewer | None = getattr(request.state, "viewer", None)
    return viewer


def dashboard_routes(
    history: HistoryStore,
    renderer: ReportRenderer,
    *,
    bucket: Bucket,
    acknowledger: Acknowledger,
    clock: Clock,
    read: Sequence[Depends],
    write: Sequence[Depends],
) -> APIRouter:
    """The pages behind `read` (the read sign-in) and the acknowledge form's POST behind `write`."""
    pages = APIRouter(dependencies=read, include_in_schema=False, default_response_class=HTMLResponse)
    actions = APIRouter(dependencies=write, include_in_schema=False, default_response_class=HTMLResponse)

    def problem(
        request: Request, status_code: int, title: str, message: str, reasons: Sequence[str] = ()
    ) -> HTMLResponse:
        html = renderer.message_page(title, message, reasons=reasons, viewer=_viewer(request))
        return html_page(html, status_code)

    def not_found(request: Request, what: str) -> HTMLResponse:
        return problem(request, 404, "Not found", f"certmon knows no such {what}.")

    def bad_query(request: Request, exc: BadQuery) -> HTMLResponse:
        return problem(request, 400, "Bad filter", "This list cannot be shown with these values:", exc.reasons)

    @pages.get("/")
    async def overview(request: Request) -> HTMLResponse:
        """Counts per level and grade, the next expirations, the open alarms."""
        now = clock()
        view = await dashboard.overview(history, now)
        return html_page(renderer.overview(view, now=now, viewer=_viewer(request)))

    @pages.get("/certificates")
    async def certificates(request: Request) -> HTMLResponse:
        """A page of targets, filtered and sorted by the query string."""
        try:
            query = CertificateQuery.parse(request.query_params)
        except BadQuery as exc:
            return bad_query(request, exc)
        now = clock()
        listing = await dashboard.certificate_list(history, query.where(now), sort=query.sort, after=query.after)
        links = ListLinks(
            first=query.link("/certificates", cursor=None) if query.cursor else None,
            next=query.link("/certificates", cursor=encode_row_key(query.sort, listing.next_after))
            if listing.next_after
            else None,
            sorts={
                column: (query.link("/certificates", sort=order, cursor=None), query.sort == order)
                for column, order in _SORTS.items()
            },
        )
        return html_page(renderer.certificate_list(listing, links, query=query, now=now, viewer=_viewer(request)))

    @pages.get("/certificates/{fingerprint}")
    async def certificate(fingerprint: str, request: Request) -> HTMLResponse:
        """One certificate, by SHA-256 fingerprint (colons and either case accepted)."""
        canonical = normalize_fingerprint(fingerprint)
        page = await dashboard.certificate_page(history, canonical) if canonical is not None else None
        if page is None:
            return not_found(request, "certificate")
        return html_page(renderer.certificate_page(page, now=clock(), viewer=_viewer(request)))

    @pages.get("/timeline")
    async def timeline(request: Request) -> HTMLResponse:
        """The coming expirations on a calendar and per month."""
        view = await dashboard.timeline(history, clock())
        return html_page(renderer.timeline(view, viewer=_viewer(request)))

    @pages.get("/alarms")
    async def alarms(request: Request) -> HTMLResponse:
        """A page of alarms with their transitions, notifications and acknowledgements, filtered."""
        try:
            query = AlarmQuery.parse(request.query_params)
        except BadQuery as exc:
            return bad_query(request, exc)
        page = await dashboard.alarm_history(history, query.where(), after=query.after)
        links = ListLinks(
            first=query.link("/alarms", cursor=None) if query.cursor else None,
            next=query.link("/alarms", cursor=encode_alarm_key(page.next_after)) if page.next_after else None,
        )
        return html_page(renderer.alarm_history(page, links, query=query, viewer=_viewer(request)))

    @pages.get("/alarms/{alarm_id}")
    async def alarm(alarm_id: str, request: Request, ack: str = "") -> HTMLResponse:
        """One alarm; `ack` is what became of an acknowledgement just sent from its form."""
        view = await load_alarm(history, alarm_id)
        if view is None:
            return not_found(request, "alarm")
        return html_page(renderer.alarm_page(view, viewer=_viewer(request), ack=ack))

    @pages.get("/reports")
    async def reports(request: Request) -> HTMLResponse:
        """The published reports, with a link to each object."""
        published = await history.reports(limit=REPORTS_SHOWN)
        return html_page(renderer.reports_page(published, viewer=_viewer(request)))

    @pages.get("/reports/{key:path}")
    async def report_object(key: str, request: Request) -> Response:
        """A report object from the bucket, with its content type; its HTML is self-contained, so the page CSP
        holds for it too."""
        try:
            data = await bucket.get(key)
        except ObjectNotFound:
            return not_found(request, "report")
        except BucketError as exc:
            log.warning("report_read_failed", key=key, error=str(exc))
            return problem(request, 502, "Report unavailable", "The reports bucket did not answer; try again later.")
        suffix = key.rpartition(".")[2].lower()
        headers = {
            "Content-Security-Policy": DASHBOARD_CSP,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        }
        if suffix not in ("html", "pdf"):
            headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(key.rpartition('/')[2])}"
        return Response(data, media_type=_CONTENT_TYPES.get(suffix, "application/octet-stream"), headers=headers)

    @actions.post("/alarms/{alarm_id}/ack")
    async def acknowledge(alarm_id: str, request: Request) -> Response:
        """Acknowledge an alarm from its form, as the signed-in user, and go back to the alarm's page."""
        form = await read_form(request)
        if form is None:
            return problem(request, 400, "Cannot acknowledge", "The request was not a form, or too large.")
        comment = form.get("comment", [""])[0].strip() or None
        viewer = _viewer(request)
        try:
            body = AckBody(by=(viewer.name if viewer else None) or DASHBOARD_ACTOR, comment=comment)
        except ValidationError:
            return problem(request, 422, "Cannot acknowledge", f"A comment has at most {MAX_ACK_COMMENT} characters.")
        outcome = await acknowledger.acknowledge(alarm_id, by=body.by, comment=body.comment, via="api")
        if outcome.status == "unknown":
            return not_found(request, "alarm")
        return RedirectResponse(f"/alarms/{quote(alarm_id, safe='')}?ack={outcome.status}", 303)

    router = APIRouter()
    router.include_router(pages)
    router.include_router(actions)
    return router
