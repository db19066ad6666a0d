"""What the API and the dashboard's pages read: one alarm, one certificate, assembled from the history."""

from services.reporter.domain.views import AlarmView, CertificateDetail, alarm_views
from services.reporter.ports import CertificateFilter, HistoryStore

#: The most targets a certificate's detail lists as serving it (a wildcard certificate may be served by thousands).
MAX_SERVED_AT = 10_000


async def load_alarm(history: HistoryStore, alarm_id: str) -> AlarmView | None:
    """One alarm with its history and notifications, or None if the history has never seen it."""
    events = await history.alarm_events(alarm_id=alarm_id)
    if not events:
        return None
    [view] = alarm_views(events, await history.notifications([alarm_id]))
    return view


async def certificate_detail(history: HistoryStore, fingerprint: str) -> CertificateDetail | None:
    """One certificate by canonical fingerprint: where it is served now, its evaluations, its alarms; None if it
    was never evaluated."""
    evaluations = await history.evaluations_of(fingerprint)
    if not evaluations:
        return None
    serving = await history.certificate_rows(
        CertificateFilter(fingerprint=fingerprint), sort="target", limit=MAX_SERVED_AT
    )
    events = await history.alarm_events(fingerprint=fingerprint)
    notifications = await history.notifications(sorted({e.alarm_id for _, e in events}))
    return CertificateDetail(
        fingerprint_sha256=fingerprint,
        certificate=evaluations[0].certificate,
        served_at=[row.target_key for row in serving],
        evaluations=evaluations,
        alarms=alarm_views(events, notifications),
    )
