"""Expiry: fractional days remaining, status, renewal window, and the one expiry finding that applies."""

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.evaluator.domain.codes import finding
from services.evaluator.domain.parse import ParsedCert
from shared.config import Policy
from shared.events.evaluation import ExpiryInfo, Finding

_SECONDS_PER_DAY = 86400.0

Status = Literal["valid", "expiring_soon", "expired", "not_yet_valid"]
Window = Literal["plan", "initiate", "urgent", "critical", "expired"]


@dataclass(frozen=True)
class ExpiryResult:
    """The expiry section of the evaluation and at most one finding."""

    info: ExpiryInfo
    finding: Finding | None


def _window(days: float, policy: Policy) -> Window:
    if days < 0:
        return "expired"
    if days <= policy.critical_days:
        return "critical"
    if days <= policy.warning_days:
        return "urgent"
    if days <= policy.info_days:
        return "initiate"
    return "plan"


def _finding(leaf: ParsedCert, days: float, now: datetime, policy: Policy) -> Finding | None:
    """The nearest threshold crossed, and only that one."""
    if now < leaf.not_before:
        return finding(
            "expiry.not_yet_valid",
            f"the certificate is not valid before {leaf.not_before.isoformat()}",
        )
    if days < 0:
        return finding(
            "expiry.expired",
            f"the certificate expired {_tenths(-days)} days ago ({leaf.not_after.isoformat()})",
        )
    for code, limit, name in (
        ("expiry.within_7_days", policy.critical_days, "critical"),
        ("expiry.within_30_days", policy.warning_days, "warning"),
        ("expiry.within_90_days", policy.info_days, "info"),
    ):
        if days <= limit:
            return finding(
                code,
                f"the certificate expires in {_tenths(days)} days ({leaf.not_after.isoformat()}); "
                f"{name} threshold {limit} days",
            )
    return None


def evaluate_expiry(leaf: ParsedCert, *, now: datetime, policy: Policy) -> ExpiryResult:
    """Days remaining until notAfter (fractional, negative once expired) judged against the policy thresholds."""
    days = (leaf.not_after - now).total_seconds() / _SECONDS_PER_DAY
    status: Status
    if now < leaf.not_before:
        status = "not_yet_valid"
    elif days < 0:
        status = "expired"
    elif days <= policy.warning_days:
        status = "expiring_soon"
    else:
        status = "valid"
    info = ExpiryInfo(days_remaining=round(days, 6), status=status, renewal_window=_window(days, policy))
    return ExpiryResult(info=info, finding=_finding(leaf, days, now, policy))


def _tenths(days: float) -> str:
    """Days truncated (not rounded) to tenths, so 6.97 days reads 6.9 and never crosses a threshold in words."""
    return f"{math.floor(days * 10) / 10:.1f}"
