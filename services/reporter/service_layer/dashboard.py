"""What the dashboard's pages read: the overview, a page of certificates or alarms, a certificate, the timeline,
each assembled from the history's slim reads so that no page reads every evaluation or every alarm."""

from dataclasses import dataclass
from datetime import datetime

from services.reporter.domain.certificate_view import ChainView, chain_view, owners_of
from services.reporter.domain.estate import (
    AlarmKey,
    AlarmRow,
    EstateCounts,
    Facets,
    ObservationRow,
    RowKey,
    TargetRow,
)
from services.reporter.domain.timeline import PER_DAY, Timeline, build_timeline, calendar_span, month_span
from services.reporter.domain.views import AlarmView, alarm_views
from services.reporter.ports import AlarmFilter, CertificateFilter, CertificateSort, HistoryStore
from shared.events import Evaluation, OwnerRef

PAGE_SIZE = 50
NEXT_EXPIRATIONS = 10
OPEN_ALARMS_SHOWN = 20
OBSERVATIONS_SHOWN = 50
LEVEL_CHANGES_SHOWN = 100
SERVING_SHOWN = 500


@dataclass(frozen=True)
class Overview:
    """The estate's counts, the certificates expiring next, and the alarms not resolved, most severe first."""

    counts: EstateCounts
    next_expirations: list[TargetRow]
    open_alarms: list[AlarmRow]


async def overview(history: HistoryStore, now: datetime) -> Overview:
    """The overview at `now`."""
    return Overview(
        counts=await history.estate_counts(now),
        next_expirations=await history.certificate_rows(
            CertificateFilter(expires_from=now), sort="expiry", limit=NEXT_EXPIRATIONS
        ),
        open_alarms=await history.alarm_rows(
            AlarmFilter(states=("open", "acknowledged")), order="severity", limit=OPEN_ALARMS_SHOWN
        ),
    )


@dataclass(frozen=True)
class CertificateList:
    """A page of targets, where the next page starts (None: this is the last), how many match in all, and the
    values the filters offer."""

    rows: list[TargetRow]
    next_after: RowKey | None
    total: int
    facets: Facets


async def certificate_list(
    history: HistoryStore, where: CertificateFilter, *, sort: CertificateSort, after: RowKey | None
) -> CertificateList:
    """The page of targets matching `where` after `after`, in the order `sort`."""
    rows = await history.certificate_rows(where, sort=sort, after=after, limit=PAGE_SIZE + 1)
    page = rows[:PAGE_SIZE]
    return CertificateList(
        rows=page,
        next_after=page[-1].key if len(rows) > PAGE_SIZE else None,
        total=await history.count_certificates(where),
        facets=await history.facets(),
    )


@dataclass(frozen=True)
class CertificatePage:
    """One certificate: its newest evaluation and chain, the targets serving it now, its recent observations and
    level changes (newest first), its alarms with their notifications, and its owners with their rules."""

    fingerprint: str
    latest: Evaluation
    chain: ChainView
    serving: list[TargetRow]
    observations: list[ObservationRow]
    changes: list[ObservationRow]
    alarms: list[AlarmView]
    owners: list[OwnerRef]


async def certificate_page(history: HistoryStore, fingerprint: str) -> CertificatePage | None:
    """The certificate with the canonical `fingerprint`, or None if it was never evaluated."""
    newest = await history.evaluations_of(fingerprint, limit=1)
    if not newest:
        return None
    events = await history.alarm_events(fingerprint=fingerprint)
    alarm_ids = sorted({event.alarm_id for _, event in events})
    alarms = alarm_views(events, await history.notifications(alarm_ids))
    return CertificatePage(
        fingerprint=fingerprint,
        latest=newest[0],
        chain=chain_view(newest[0]),
        serving=await history.certificate_rows(
            CertificateFilter(fingerprint=fingerprint), sort="target", limit=SERVING_SHOWN
        ),
        observations=await history.observations_of(fingerprint, limit=OBSERVATIONS_SHOWN),
        changes=await history.observations_of(fingerprint, limit=LEVEL_CHANGES_SHOWN, changes_only=True),
        alarms=alarms,
        owners=owners_of(alarms),
    )


async def timeline(history: HistoryStore, now: datetime) -> Timeline:
    """The expiration timeline at `now`."""
    start, end = calendar_span(now)
    months_start, months_end = month_span(now)
    return build_timeline(
        now,
        await history.expiry_counts(start, end, unit="day"),
        await history.expiring(start, end, per_day=PER_DAY),
        await history.expiry_counts(months_start, months_end, unit="month"),
    )


@dataclass(frozen=True)
class AlarmPage:
    """A page of alarms with their transitions and notifications, and where the next page starts (None: this is
    the last)."""

    alarms: list[AlarmView]
    next_after: AlarmKey | None


async def alarm_page(history: HistoryStore, where: AlarmFilter, *, after: AlarmKey | None, limit: int) -> AlarmPage:
    """The page of at most `limit` alarms matching `where` after `after`, latest change first (a tie: the larger
    alarm id first): the page's rows from `alarms`, then the transitions and deliveries of those alarms only."""
    rows = await history.alarm_rows(where, after=after, limit=limit + 1)
    page = rows[:limit]
    ids = [row.alarm_id for row in page]
    views = {
        view.alarm_id: view
        for view in alarm_views(await history.alarm_events(alarm_ids=ids), await history.notifications(ids))
    }
    next_after = page[-1].key if len(rows) > limit else None
    return AlarmPage(alarms=[views[alarm_id] for alarm_id in ids], next_after=next_after)


@dataclass(frozen=True)
class AlarmHistory:
    """A page of alarms with their transitions and notifications, where the next page starts (None: this is the
    last), and how many match in all."""

    alarms: list[AlarmView]
    next_after: AlarmKey | None
    total: int


async def alarm_history(history: HistoryStore, where: AlarmFilter, *, after: AlarmKey | None) -> AlarmHistory:
    """The dashboard's page of alarms matching `where` after `after`, latest change first, and their count."""
    page = await alarm_page(history, where, after=after, limit=PAGE_SIZE)
    return AlarmHistory(alarms=page.alarms, next_after=page.next_after, total=await history.count_alarms(where))
