"""The reporter's own work, counted: reports published by kind, and publications that failed.

(The certificate gauges of the estate, in certmon's and the exporters' names, are `adapters.metrics`.)
"""

from prometheus_client import Counter

REPORTS_PUBLISHED = Counter(
    "certmon_reports_published",
    "Reports written to the bucket, recorded and announced, by kind (daily, weekly, monthly, custom).",
    ["kind"],
)
REPORT_FAILURES = Counter(
    "certmon_report_failures", "Report publications that failed (building or writing them), by kind.", ["kind"]
)

KINDS = ("daily", "weekly", "monthly", "custom")


def start_series() -> None:
    """Start every kind's series at zero (called once the reporter is wired)."""
    for kind in KINDS:
        REPORTS_PUBLISHED.labels(kind)
        REPORT_FAILURES.labels(kind)
