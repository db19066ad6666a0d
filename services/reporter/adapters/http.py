"""The reporter's HTTP surface: the API under `/api/v1`, the HTML pages (`adapters.pages`), signing in
(`adapters.signin`), health probes and `/metrics`.

Reading the API and the dashboard needs a read or a write sign-in, every POST a write one (`adapters.auth`); a page
asked for without one sends the browser to `/login`. Health and metrics never ask (probes and Prometheus scrape
without secrets), and an acknowledge link is its own credential.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from services.reporter.adapters.auth import ApiTokens
from services.reporter.adapters.bucket import bucket_from_settings
from services.reporter.adapters.dashboard_pages import dashboard_routes
from services.reporter.adapters.metric_source import HistoryLatest, LatestEvaluations
from services.reporter.adapters.metrics import EstateMetrics
from services.reporter.adapters.page_params import decode_alarm_key, encode_alarm_key
from services.reporter.adapters.pages import ack_link_routes
from services.reporter.adapters.rendering import ReportRenderer
from services.reporter.adapters.sessions import SessionSigner
from services.reporter.adapters.signin import add_sign_in
from services.reporter.domain.report import normalize_fingerprint
from services.reporter.domain.views import (
    AckAccepted,
    AckBody,
    AlarmView,
    CertificateDetail,
    CertificatePage,
    ReportList,
)
from services.reporter.ports import AlarmFilter, Bucket, CertificateFilter, HistoryStore
from services.reporter.service_layer.acknowledging import Acknowledger
from services.reporter.service_layer.dashboard import alarm_page
from services.reporter.service_layer.queries import certificate_detail, load_alarm
from shared.action_links import ActionLinkSigner
from shared.clock import Clock, utc_now
from shared.events import AlarmState
from shared.events.evaluation import Grade, Level
from shared.health import Readiness, add_health_routes
from shared.health import readiness as shared_readiness
from shared.settings import Settings

#: How many alarms `GET /api/v1/alarms` answers when not asked (`limit`), and the most it answers: a page holds every
#: transition and delivery of its alarms, so a page is what bounds the reporter's memory, not the estate.
ALARMS_PAGE = 100
MAX_ALARMS_PAGE = 1000
#: What the API's guards answer (`adapters.auth`), in every operation's documented responses.
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: {"description": "no valid bearer token"}}
#: What else refuses a POST before its handler runs: a body that is no JSON (FastAPI's own answer), a read token.
WRITE_REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"description": "the body is not JSON"},
    403: {"description": "the token may only read"},
}
#: What `normalize_fingerprint` accepts, in the OpenAPI document, so that the 422 of a path that is no fingerprint is
#: FastAPI's documented validation error.
FINGERPRINT_PATTERN = r"^[:\s]*(?:[0-9A-Fa-f][:\s]*){64}$"
FINGERPRINT_DOC = "a SHA-256 fingerprint: 64 hex digits, either case, colons and spaces allowed"
LINK_NEXT_DOC = (
    'A page of alarms. Unless it is the last, the `Link` header (RFC 8288) has the next page\'s URL as `rel="next"`; '
    "its `cursor` parameter is opaque."
)


def create_app(
    history: HistoryStore,
    settings: Settings,
    *,
    links: ActionLinkSigner,
    acknowledger: Acknowledger | None = None,
    renderer: ReportRenderer | None = None,
    clock: Clock = utc_now,
    readiness: Callable[[], Awaitable[Readiness]] | None = None,
    sessions: SessionSigner | None = None,
    bucket: Bucket | None = None,
    estate: LatestEvaluations | None = None,
) -> FastAPI:
    """The FastAPI application over `history`, with its own estate metrics registry.

    `links` verifies acknowledge tokens; `acknowledger` sends acknowledge requests (by default one that waits on
    `history` and kicks no relay); `readiness` is the process's probe (by default the database only); `sessions`
    signs the dashboard's session cookies (by default with a key of this process only); `bucket` is where the
    reports page reads report objects (by default the one `settings.reports_url` names); `estate` is where
    `/metrics` pages through the latest evaluations (by default `history`'s `latest`).
    """
    renderer = renderer or ReportRenderer()
    acknowledger = acknowledger or Acknowledger(history, clock=clock)
    metrics = EstateMetrics(estate or HistoryLatest(history), clock=clock)
    tokens = ApiTokens(settings, sessions=sessions, clock=clock)
    read = [Depends(tokens.require("read"))]
    app = FastAPI(title="certmon reporter", version="1", docs_url=None, redoc_url=None)
    api = APIRouter(prefix="/api/v1", dependencies=read, responses=UNAUTHORIZED)
    api_write = APIRouter(
        prefix="/api/v1", dependencies=[Depends(tokens.require("write"))], responses=UNAUTHORIZED | WRITE_REFUSALS
    )

    @api.get("/certificates", response_model=CertificatePage)
    async def certificates(
        level: Level | None = None,
        grade: Grade | None = None,
        owner: str | None = None,
        server: str | None = None,
        q: Annotated[str | None, Query(max_length=256)] = None,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    ) -> CertificatePage:
        """The latest evaluation object per target, filtered, by target key; page with `cursor`."""
        where = CertificateFilter(level=level, grade=grade, owner=owner, server=server, q=q)
        items = await history.latest(where, after=cursor, limit=limit + 1)
        next_cursor = items[limit - 1].target_key if len(items) > limit else None
        return CertificatePage(items=items[:limit], next_cursor=next_cursor)

    @api.get(
        "/certificates/{fingerprint}",
        response_model=CertificateDetail,
        responses={404: {"description": "no evaluation of this certificate"}},
    )
    async def certificate(
        fingerprint: Annotated[str, Path(pattern=FINGERPRINT_PATTERN, description=FINGERPRINT_DOC)],
    ) -> CertificateDetail:
        """One certificate by SHA-256 fingerprint (colons and either case accepted)."""
        canonical = normalize_fingerprint(fingerprint)
        detail = await certificate_detail(history, canonical) if canonical is not None else None
        if detail is None:
            raise HTTPException(404, "no evaluation of this certificate")
        return detail

    @api.get(
        "/alarms",
        response_model=list[AlarmView],
        responses={
            200: {"description": LINK_NEXT_DOC, "headers": {"Link": {"schema": {"type": "string"}}}},
            400: {"description": "the cursor is not one this list gave"},
        },
    )
    async def alarms(
        request: Request,
        response: Response,
        state: AlarmState | None = None,
        level: Level | None = None,
        cursor: Annotated[str | None, Query(max_length=1024)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_ALARMS_PAGE)] = ALARMS_PAGE,
    ) -> list[AlarmView]:
        """Alarms as of their latest transition, with history and notifications, newest activity first (a tie: the
        larger alarm id first), `limit` at a time; the next page is the `Link` header's `rel="next"`."""
        try:
            after = decode_alarm_key(cursor) if cursor is not None else None
        except ValueError as exc:
            raise HTTPException(400, f'{exc}: pass back the cursor of a Link rel="next" unchanged') from exc
        where = AlarmFilter(states=(state,) if state is not None else (), level=level)
        page = await alarm_page(history, where, after=after, limit=limit)
        if page.next_after is not None:
            following = request.url.include_query_params(cursor=encode_alarm_key(page.next_after))
            response.headers["Link"] = f'<{following}>; rel="next"'
        return page.alarms

    @api.get("/alarms/{alarm_id}", response_model=AlarmView, responses={404: {"description": "no such alarm"}})
    async def alarm(alarm_id: str) -> AlarmView:
        """One alarm with its history, notifications and acknowledgement."""
        view = await load_alarm(history, alarm_id)
        if view is None:
            raise HTTPException(404, "no such alarm")
        return view

    @api_write.post(
        "/alarms/{alarm_id}/ack",
        response_model=AlarmView,
        responses={
            202: {"model": AckAccepted, "description": "sent to the alarmer, not confirmed yet"},
            404: {"description": "no such alarm"},
            409: {"description": "the alarm is resolved"},
        },
    )
    async def acknowledge(alarm_id: str, body: AckBody) -> AlarmView | JSONResponse:
        """Acknowledge an open alarm: 200 with the alarm once the alarmer confirms (at once if it was acknowledged
        already), 202 if the confirmation has not arrived within a few seconds."""
        outcome = await acknowledger.acknowledge(alarm_id, by=body.by, comment=body.comment, via="api")
        if outcome.status == "unknown":
            raise HTTPException(404, "no such alarm")
        if outcome.status == "resolved":
            raise HTTPException(409, "the alarm is resolved: there is nothing to acknowledge")
        if outcome.status == "accepted" or outcome.alarm is None:
            return JSONResponse(AckAccepted(alarm_id=alarm_id).model_dump(), status_code=202)
        return outcome.alarm

    @api.get("/reports", response_model=ReportList)
    async def reports() -> ReportList:
        """Published reports and their bucket keys, newest period first."""
        return ReportList(items=await history.reports())

    add_health_routes(app, readiness or (lambda: shared_readiness(None, history.ping)), extra_metrics=metrics.scrape)

    app.include_router(api)
    app.include_router(api_write)
    add_sign_in(app, tokens, renderer, public_url=settings.public_url, clock=clock)
    app.include_router(
        dashboard_routes(
            history,
            renderer,
            bucket=bucket or bucket_from_settings(settings),
            acknowledger=acknowledger,
            clock=clock,
            read=[Depends(tokens.require("read", redirect=True))],
            write=[Depends(tokens.require("write"))],
        )
    )
    app.include_router(ack_link_routes(history, renderer, acknowledger=acknowledger, links=links, clock=clock))
    return app
