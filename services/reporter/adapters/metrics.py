"""Estate metrics for Prometheus, recomputed from the latest evaluations on every scrape.

certmon's own families (`certmon_*`: alarm level, grade, days left per target and certificate) sit beside the
families of ssl_exporter (`ssl_exporter_metrics`) and x509-certificate-exporter (`x509_exporter_metrics`) under
their names and labels, so existing dashboards and alert rules work unchanged. docs/estate-metrics.md lists them.
"""

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from services.reporter.adapters.metric_labels import Names, certificates
from services.reporter.adapters.metric_text import Family, escape
from services.reporter.adapters.ssl_exporter_metrics import SslExporterFamilies
from services.reporter.adapters.x509_exporter_metrics import X509ExporterFamilies
from services.reporter.domain.report import LEVELS
from shared.events import Evaluation
from shared.events.evaluation import LEVEL_ORDER


class EstateMetrics:
    """Renders the reporter's estate families; holds no state between scrapes."""

    def exposition(self, evaluations: Sequence[Evaluation], *, now: datetime) -> bytes:
        """The text exposition of every family for `evaluations` (the latest per target) as of `now`."""
        names = Names()
        ssl = SslExporterFamilies(names)
        x509 = X509ExporterFamilies(names, now)
        by_level = Family("certmon_certificates", "Targets by the alarm level of their latest evaluation.")
        not_after = Family(
            "certmon_cert_not_after_timestamp_seconds",
            "NotAfter of the leaf certificate each target serves, as a Unix timestamp.",
        )
        days_left = Family(
            "certmon_cert_days_remaining", "Days (fractional) until the leaf certificate each target serves expires."
        )
        alarm_level = Family(
            "certmon_target_alarm_level",
            "Alarm level of each target's latest evaluation: 0 ok, 1 info, 2 warning, 3 critical.",
        )
        grade = Family("certmon_target_grade_info", "Security grade of each target's latest evaluation (always 1).")
        levels: Counter[str] = Counter()
        for evaluation in evaluations:
            target = escape(evaluation.target_key)
            levels[evaluation.alarm.level] += 1
            alarm_level.add(f'target="{target}"', LEVEL_ORDER[evaluation.alarm.level])
            if evaluation.security is not None:
                grade.add(f'grade="{evaluation.security.grade}",target="{target}"', 1)
            certs = certificates(evaluation)
            ssl.add(evaluation, certs, target)
            x509.add(evaluation, certs, target)
            cert = evaluation.certificate
            if cert is None:
                continue
            fields = names.fields(cert.subject), names.fields(cert.issuer)
            # serial_number stays in hex here, as this family always had it (the exporter families print decimal).
            label_text = (
                f'target="{target}",subject_CN="{escape(fields[0].get("CN", ""))}",'
                f'issuer_CN="{escape(fields[1].get("CN", ""))}",serial_number="{escape(cert.serial)}"'
            )
            not_after.add(label_text, cert.not_after.timestamp())
            if evaluation.expiry is not None:
                days_left.add(label_text, evaluation.expiry.days_remaining)
        for level in LEVELS:
            by_level.add(f'level="{level}"', levels.get(level, 0))
        families = [by_level, not_after, days_left, alarm_level, grade, *ssl.families(), *x509.families()]
        return "".join(family.render() for family in families).encode()
