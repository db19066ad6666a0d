"""`report.published.v1`: a report was written to the bucket."""

from datetime import datetime
from typing import Literal

from shared.events.base import Frozen


class ReportPublished(Frozen):
    """Kind, period and the object keys written (one per format)."""

    kind: Literal["daily", "weekly", "monthly", "custom"]
    period_start: datetime
    period_end: datetime
    keys: list[str]
    location: str
