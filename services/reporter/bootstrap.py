"""Wiring of the reporter: history, bucket, renderer, handlers, outbox relay, schedule, acknowledger, HTTP server,
retention."""

from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg
import structlog
from fastapi import FastAPI

from services.reporter.adapters.auth import ApiTokens
from services.reporter.adapters.bucket import bucket_from_settings
from services.reporter.adapters.history import SCHEMA, History
from services.reporter.adapters.http import create_app
from services.reporter.adapters.metric_source import PostgresLatest
from services.reporter.adapters.rendering import ReportRenderer
from services.reporter.adapters.sessions import SessionSigner
from services.reporter.domain.catalog import ReportKind, daily_hour, report_spec, scheduled_reports
from services.reporter.domain.periods import Period
from services.reporter.handlers import ReporterHandlers, subscriptions
from services.reporter.ports import Bucket, HistoryStore
from services.reporter.service_layer.acknowledging import Acknowledger
from services.reporter.service_layer.building import ReportBuilder
from services.reporter.service_layer.custom_reports import CustomReportBuilder
from services.reporter.service_layer.metrics import start_series
from services.reporter.service_layer.publishing import DEFAULT_RETRY, Publication, ReportPublisher, UploadRetry
from services.reporter.service_layer.scheduling import ReportScheduler
from shared.action_links import ActionLinkSigner, link_secret_key
from shared.broker import Bus
from shared.clock import Clock, utc_now
from shared.config import CertmonConfig, TargetTags
from shared.health import database_probe, readiness
from shared.http_server import HttpServer
from shared.outbox import OutboxRelay
from shared.retention import Retention
from shared.settings import Settings

log = structlog.get_logger(__name__)


class ReporterService:
    """Consumes evaluations, alarms and deliveries; serves dashboard and API; publishes reports."""

    name = "reporter"

    def __init__(
        self,
        *,
        bus: Bus,
        history: History,
        publisher: ReportPublisher,
        config: CertmonConfig,
        relay: OutboxRelay,
        retention: Retention,
        scheduler: ReportScheduler | None,
        app: FastAPI,
        http: HttpServer | None,
        api_open: bool,
    ) -> None:
        self._bus, self.history, self._publisher, self._config, self._relay = bus, history, publisher, config, relay
        self._scheduler, self.app, self._http, self._api_open = scheduler, app, http, api_open
        self.retention = retention

    @property
    def http_port(self) -> int:
        """The port the dashboard and API listen on (the real one when settings asked for port 0)."""
        if self._http is None:
            raise RuntimeError("this reporter was built without an HTTP server")
        return self._http.port

    async def start(self) -> None:
        """Migrate, bind the HTTP server, subscribe, start the outbox relay, the retention and the report schedules.

        If a step fails, what already started is stopped again before the error propagates.
        """
        await self.history.migrate()
        try:
            if self._http is not None:
                await self._http.start()
            for route in subscriptions(ReporterHandlers(self.history)):
                await self._bus.subscribe(route)
            await self._relay.start()
            await self.retention.start()
            if self._scheduler is not None:
                await self._scheduler.start()
        except BaseException:
            await self.stop()
            raise
        log.info("reporter_started", http_port=self._http.port if self._http is not None else None)
        if self._api_open:
            log.warning(
                "api_open_without_tokens",
                hint="anyone who reaches the dashboard and API may read and acknowledge; "
                "set CERTMON_API_TOKENS and CERTMON_API_WRITE_TOKENS",
            )

    async def stop(self) -> None:
        """Stop serving, scheduling, pruning and relaying (the relay publishes what is pending once more)."""
        if self._http is not None:
            await self._http.stop()
        if self._scheduler is not None:
            await self._scheduler.stop()
        await self.retention.stop()
        await self._relay.stop()

    async def publish(
        self, kind: ReportKind, period: Period, *, now: datetime, name: str | None = None, rebuild: bool = False
    ) -> Publication:
        """Publish the report of `kind` (the custom report `name`) over `period`, built at `now`: once per period,
        whoever calls, announced once (`rebuild` writes a published one again, without announcing it)."""
        spec = report_spec(self._config.reports, kind, name)
        return await self._publisher.publish(spec, period, now=now, rebuild=rebuild)


def bootstrap(
    settings: Settings,
    config: CertmonConfig,
    *,
    bus: Bus,
    pool: asyncpg.Pool | None,
    clock: Clock = utc_now,
    bucket: Bucket | None = None,
    serve_http: bool = True,
    report_tick_seconds: float = 60.0,
    links: ActionLinkSigner | None = None,
) -> ReporterService:
    """Build the reporter; it needs PostgreSQL. `bucket` overrides the one `settings.reports_url` names; `links`
    the acknowledge-link signer built from `CERTMON_LINK_SECRET` (or the key generated in the data directory),
    which also signs the dashboard's sessions (under a salt of their own)."""
    if pool is None:
        raise ValueError("the reporter needs PostgreSQL: pass a pool (CERTMON_DATABASE_URL)")
    history = History(pool)
    renderer = ReportRenderer()
    key = link_secret_key(settings)
    relay = OutboxRelay(pool, SCHEMA, bus)
    retention = timedelta(seconds=config.history.retention)

    async def prune(now: datetime) -> int:
        return await history.prune(now, retention=retention)

    bucket = bucket or bucket_from_settings(settings)
    publisher = build_publisher(config, history, bucket, renderer=renderer, announced=relay.kick)
    scheduled = scheduled_reports(
        config.reports,
        daily_hour_utc=daily_hour(
            config.reports,
            setting=settings.daily_report_hour_utc,
            setting_given="daily_report_hour_utc" in settings.model_fields_set,
        ),
    )
    scheduler = (
        ReportScheduler(publisher, scheduled, clock=clock, tick_seconds=report_tick_seconds) if scheduled else None
    )
    app = create_app(
        history,
        settings,
        links=links or ActionLinkSigner(key),
        acknowledger=Acknowledger(history, clock=clock, requested=relay.kick),
        renderer=renderer,
        clock=clock,
        readiness=lambda: readiness(bus, database_probe(pool)),
        sessions=SessionSigner(key),
        bucket=bucket,
        estate=PostgresLatest(pool),
    )
    http = HttpServer(app, settings.http_host, settings.http_port) if serve_http else None
    start_series()
    return ReporterService(
        bus=bus,
        history=history,
        publisher=publisher,
        config=config,
        relay=relay,
        retention=Retention(SCHEMA, prune, clock=clock),
        scheduler=scheduler,
        app=app,
        http=http,
        api_open=ApiTokens(settings).open,
    )


def build_publisher(
    config: CertmonConfig,
    history: HistoryStore,
    bucket: Bucket,
    *,
    renderer: ReportRenderer,
    announced: Callable[[], None] = lambda: None,
    retry: UploadRetry = DEFAULT_RETRY,
) -> ReportPublisher:
    """The report publisher on `history` and `bucket`: the built-in kinds' builder and the custom reports' (with
    the tags `config` gives targets); `announced` is called after an announcement is enqueued."""
    return ReportPublisher(
        history,
        bucket,
        ReportBuilder(history, renderer, config),
        CustomReportBuilder(history, renderer, TargetTags.of(config)),
        announced=announced,
        retry=retry,
    )


async def report_publisher(settings: Settings, config: CertmonConfig, pool: asyncpg.Pool) -> ReportPublisher:
    """The publisher `certmon report` uses: on the reporter's history in `pool` (migrated first), writing to the
    bucket `settings` names. Its announcements wait in the outbox for the running reporter's relay to send."""
    history = History(pool)
    await history.migrate()
    return build_publisher(config, history, bucket_from_settings(settings), renderer=ReportRenderer())
