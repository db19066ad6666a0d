"""The `reports:` section of `certmon.yaml`: when each report kind is published, the policy the monthly compliance
report checks every certificate against, and the custom reports (a filter, a schedule, formats)."""

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from shared.config.base import Strict
from shared.events.evaluation import Grade, Level

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
ReportFormat = Literal["html", "csv", "json", "pdf"]
#: A custom report's period: the previous whole day, ISO week or month (UTC) when published on schedule.
CustomSchedule = Literal["daily", "weekly", "monthly", "off"]
TlsVersion = Literal["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]


class DailySchedule(Strict):
    """The daily status report, published once per UTC day from `hour_utc` on (`enabled: false`: never)."""

    enabled: bool = True
    hour_utc: int = Field(default=6, ge=0, le=23)


class WeeklySchedule(Strict):
    """The weekly trend report of the previous ISO week, published on `weekday` from `hour_utc` on."""

    enabled: bool = True
    weekday: Weekday = "monday"
    hour_utc: int = Field(default=6, ge=0, le=23)


class MonthlySchedule(Strict):
    """The monthly compliance report of the previous calendar month, published on `day` from `hour_utc` on."""

    enabled: bool = True
    day: int = Field(default=1, ge=1, le=28)
    hour_utc: int = Field(default=6, ge=0, le=23)


class CompliancePolicy(Strict):
    """What the monthly compliance report holds every certificate to; each rule maps to the finding codes that
    break it."""

    key_types: tuple[Literal["RSA", "EC", "Ed25519", "Ed448"], ...] = ("RSA", "EC", "Ed25519")
    min_rsa_bits: int = Field(default=2048, ge=1024)
    min_ec_bits: int = Field(default=256, ge=160)
    signature_hashes: tuple[Literal["sha256", "sha384", "sha512"], ...] = ("sha256", "sha384", "sha512")
    min_protocol: TlsVersion = "TLSv1.2"
    grade_floor: Grade = "B"
    max_lifetime_days: int = Field(default=398, ge=1)
    chain_problems: bool = Field(default=True, description="an incomplete, untrusted or misordered chain violates")


def _days_range(value: "DaysLeft") -> "DaysLeft":
    if value.min is not None and value.max is not None and value.min > value.max:
        raise ValueError("days_left.min is above days_left.max")
    return value


class DaysLeft(Strict):
    """A range of days left before expiry (either end open; negative: expired)."""

    min: float | None = None
    max: float | None = None


class ReportFilter(Strict):
    """Which certificates a custom report covers; every given condition must hold (a list: any of its values)."""

    owner: list[str] = Field(default_factory=list)
    server: list[str] = Field(default_factory=list)
    tag: list[str] = Field(default_factory=list)
    level: list[Level] = Field(default_factory=list)
    grade: list[Grade] = Field(default_factory=list)
    issuer: list[str] = Field(default_factory=list, description="substrings of the issuer's name, any case")
    days_left: Annotated[DaysLeft, AfterValidator(_days_range)] = DaysLeft()


def _report_name(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", value):
        raise ValueError("a report name is lower-case letters, digits and dashes (it names bucket objects)")
    return value


class CustomReport(Strict):
    """A named report over the certificates `filter` selects, published on `schedule` in `formats`."""

    name: Annotated[str, AfterValidator(_report_name)]
    schedule: CustomSchedule = "weekly"
    filter: ReportFilter = ReportFilter()
    formats: tuple[ReportFormat, ...] = Field(default=("html", "csv", "json"), min_length=1)


def _unique_names(reports: list[CustomReport]) -> list[CustomReport]:
    names = [report.name for report in reports]
    if duplicates := sorted({name for name in names if names.count(name) > 1}):
        raise ValueError(f"custom report names must be unique: {', '.join(duplicates)}")
    return reports


class Reports(Strict):
    """Schedules, the compliance policy, the formats of the built-in kinds, and the custom reports."""

    daily: DailySchedule = DailySchedule()
    weekly: WeeklySchedule = WeeklySchedule()
    monthly: MonthlySchedule = MonthlySchedule()
    formats: tuple[ReportFormat, ...] = Field(
        default=("html", "csv", "json"), min_length=1, description="of daily, weekly, monthly"
    )
    compliance: CompliancePolicy = CompliancePolicy()
    custom: Annotated[list[CustomReport], AfterValidator(_unique_names)] = Field(default_factory=list)
