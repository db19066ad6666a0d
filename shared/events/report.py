"""`report.published.v1`: a report was written to the bucket."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.events.base import Frozen


class ReportPublished(Frozen):
    """Kind, period and the object keys written (one per format)."""

    kind: Literal["daily", "weekly", "monthly", "custom"]
    period_start: datetime
    period_end: datetime
    keys: list[str]
    location: str
    name: str | None = Field(default=None, description="the custom report's name; null for the other kinds")
    period: str | None = Field(
        default=None, description="the period's label: a day 2026-12-05, an ISO week 2026-W49 or a month 2026-12"
    )
