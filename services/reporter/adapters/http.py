"""The reporter's HTTP surface: the dashboard, the read API under `/api/v1`, health probes and `/metrics`.

When `settings.api_tokens` is non-empty, the dashboard and `/api/v1/*` need `Authorization: Bearer <token>`;
health and metrics never do (probes and Prometheus scrape without secrets).
"""

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.reporter.adapters.metrics import EstateMetrics
from services.reporter.adapters.rendering import ReportRenderer
from services.reporter.domain.report import build_status_report, normalize_fingerprint
from services.reporter.domain.views import (
    AlarmState,
    AlarmView,
    CertificateDetail,
    CertificatePage,
    ReportList,
    alarm_views,
)
from services.reporter.ports import CertificateFilter, HistoryStore
from shared.clock import Clock, utc_now
from shared.events.evaluation import Grade, Level
from shared.health import Readiness, add_health_routes
from shared.health import readiness as shared_readiness
from shared.settings import Settings

#: The dashboard is one self-contained page: nothing may load from anywhere, styles are inline.
DASHBOARD_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"

_bearer = HTTPBearer(auto_error=False, description="An API token from CERTMON_API_TOKENS.")


def _token_check(settings: Settings) -> Callable[..., Awaitable[None]]:
    tokens = [t.get_secret_value().encode() for t in settings.api_tokens]

    async def require_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        if not tokens:
            return
        given = credentials.credentials.encode() if credentials is not None else b""
        # Compare against every token, so the time taken does not tell which one (or whether any) was close.
        matched = False
        for token in tokens:
            matched |= hmac.compare_digest(given, token)
        if not matched:
            raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})

    return require_token


def create_app(
    history: HistoryStore,
    settings: Settings,
    *,
    renderer: ReportRenderer | None = None,
    clock: Clock = utc_now,
    readiness: Callable[[], Awaitable[Readiness]] | None = None,
) -> FastAPI:
    """The FastAPI application over `history`, with its own estate metrics registry; `readiness` is the process's
    probe (by default the database and the background loops only)."""
    renderer = renderer or ReportRenderer()
    metrics = EstateMetrics()
    auth = [Depends(_token_check(settings))]
    app = FastAPI(title="certmon reporter", version="1", docs_url=None, redoc_url=None)
    api = APIRouter(prefix="/api/v1", dependencies=auth)

    @app.get("/", response_class=HTMLResponse, dependencies=auth, include_in_schema=False)
    async def dashboard() -> HTMLResponse:
        """The live dashboard: every certificate, most urgent first."""
        report = build_status_report(await history.latest(), [e for _, e in await history.alarm_events()], now=clock())
        return HTMLResponse(
            renderer.dashboard(report),
            headers={"Content-Security-Policy": DASHBOARD_CSP, "Cache-Control": "no-store"},
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

    @api.get("/certificates/{fingerprint}", response_model=CertificateDetail)
    async def certificate(fingerprint: str) -> CertificateDetail:
        """One certificate by SHA-256 fingerprint (colons and either case accepted)."""
        canonical = normalize_fingerprint(fingerprint)
        if canonical is None:
            raise HTTPException(422, "a fingerprint is 64 hex digits (SHA-256), colons allowed")
        evaluations = await history.evaluations_of(canonical)
        if not evaluations:
            raise HTTPException(404, "no evaluation of this certificate")
        serving = await history.latest(CertificateFilter(q=canonical))
        events = await history.alarm_events(fingerprint=canonical)
        notifications = await history.notifications(sorted({e.alarm_id for _, e in events}))
        return CertificateDetail(
            fingerprint_sha256=canonical,
            certificate=evaluations[0].certificate,
            served_at=[
                e.target_key
                for e in serving
                if e.certificate is not None and e.certificate.fingerprint_sha256 == canonical
            ],
            evaluations=evaluations,
            alarms=alarm_views(events, notifications),
        )

    @api.get("/alarms", response_model=list[AlarmView])
    async def alarms(state: AlarmState | None = None, level: Level | None = None) -> list[AlarmView]:
        """Alarms as of their latest transition, with history and notifications, newest activity first."""
        views = alarm_views(await history.alarm_events(), await history.notifications())
        return [v for v in views if (state is None or v.state == state) and (level is None or v.level == level)]

    @api.get("/reports", response_model=ReportList)
    async def reports() -> ReportList:
        """Published reports and their bucket keys, newest period first."""
        return ReportList(items=await history.reports())

    async def estate_metrics() -> bytes:
        return metrics.exposition(await history.latest())

    add_health_routes(app, readiness or (lambda: shared_readiness(None, history.ping)), extra_metrics=estate_metrics)

    app.include_router(api)
    return app
