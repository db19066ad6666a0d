"""What the API and the dashboard's pages read: one alarm, one certificate, assembled from the history."""

from services.reporter.domain.views import AlarmView, CertificateDetail, alarm_views
from services.reporter.ports import CertificateFilter, HistoryStore


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
    serving = await history.latest(CertificateFilter(q=fingerprint))
    events = await history.alarm_events(fingerprint=fingerprint)
    notifications = await history.notifications(sorted({e.alarm_id for _, e in events}))
    return CertificateDetail(
        fingerprint_sha256=fingerprint,
        certificate=evaluations[0].certificate,
        # `q` also matches subjects and names; only targets serving this very certificate count.
        served_at=[
            e.target_key
            for e in serving
            if e.certificate is not None and e.certificate.fingerprint_sha256 == fingerprint
        ],
        evaluations=evaluations,
        alarms=alarm_views(events, notifications),
    )
