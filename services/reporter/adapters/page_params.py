"""The query strings of the dashboard's lists: read and checked into the store's filters, and written back into
the links of the next page, a sort or a filter.

A bad value raises `BadQuery` with one reason per field, which the page answers with 400; a filter form sends
its empty fields, and an empty field means "any". A cursor is the sort key of the previous page's last row,
base64url-encoded JSON; it is not secret, only opaque.
"""

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Self, TypeVar
from urllib.parse import urlencode

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from services.reporter.domain.estate import AlarmKey, RowKey
from services.reporter.ports import AlarmFilter, CertificateFilter, CertificateSort
from shared.events import AlarmState
from shared.events.evaluation import Grade, Level

#: Longest text a filter takes: names, issuers and searches are shorter; longer is a mistake or an attack.
MAX_TEXT = 256
#: Days left as far as a filter goes either way (a century).
MAX_DAYS = 36_500


@dataclass(frozen=True)
class ListLinks:
    """The links of a list page: the first page (None: this is it), the next (None: there is none), and for each
    column that sorts the list its link and whether it is the current order."""

    first: str | None
    next: str | None
    sorts: dict[str, tuple[str, bool]] = field(default_factory=dict)


class BadQuery(ValueError):
    """A query string a list cannot use; `reasons` says what is wrong with each field."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


Text = Annotated[Annotated[str, StringConstraints(max_length=MAX_TEXT)] | None, BeforeValidator(_blank_is_none)]
Days = Annotated[
    Annotated[float, Field(ge=-MAX_DAYS, le=MAX_DAYS, allow_inf_nan=False)] | None, BeforeValidator(_blank_is_none)
]


_T = TypeVar("_T")
#: An optional value where an empty field means none.
Blank = Annotated[_T | None, BeforeValidator(_blank_is_none)]


def _month_or_day(value: str) -> tuple[datetime, datetime]:
    """`YYYY-MM-DD` or `YYYY-MM` as the UTC `[start, end)` of that day or month."""
    if len(value) == 7 and value[4] == "-":
        first = date.fromisoformat(value + "-01")
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return _midnight(first), _midnight(following)
    day = date.fromisoformat(value)
    return _midnight(day), _midnight(day + timedelta(days=1))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


class _Query(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Self:
        """The query of `params`, or BadQuery with the reasons."""
        try:
            return cls.model_validate(dict(params))
        except ValidationError as exc:
            raise BadQuery([_reason(error) for error in exc.errors()]) from exc

    def link(self, path: str, **changes: Any) -> str:
        """`path` with this query, some fields changed (None drops one), empty fields left out."""
        values = {**self.model_dump(mode="json", exclude_none=True, exclude_defaults=True), **changes}
        query = urlencode({k: v for k, v in values.items() if v is not None and v != ""})
        return f"{path}?{query}" if query else path


def _reason(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    field = ".".join(str(part) for part in error["loc"])
    return f"{field}: {message}" if field else message


class CertificateQuery(_Query):
    """The certificates list's query: filters, order and where the page starts."""

    level: Blank[Level] = None
    grade: Blank[Grade] = None
    owner: Text = None
    server: Text = None
    issuer: Text = None
    q: Text = None
    days_min: Days = None
    days_max: Days = None
    expires: Text = None
    sort: Annotated[CertificateSort, BeforeValidator(lambda v: _blank_is_none(v) or "urgency")] = "urgency"
    cursor: Text = None

    @field_validator("expires")
    @classmethod
    def _day_or_month(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                _month_or_day(value)
            except ValueError as exc:
                raise ValueError("a day (YYYY-MM-DD) or a month (YYYY-MM)") from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.days_min is not None and self.days_max is not None and self.days_min > self.days_max:
            raise ValueError("days_min is more than days_max")
        if self.cursor is not None:
            decode_row_key(self.cursor, self.sort)
        return self

    def where(self, now: datetime) -> CertificateFilter:
        """The store's filter at `now`: days left in `[days_min, days_max)`, and in the `expires` day or month."""
        lower = [now + timedelta(days=self.days_min)] if self.days_min is not None else []
        upper = [now + timedelta(days=self.days_max)] if self.days_max is not None else []
        if self.expires is not None:
            start, end = _month_or_day(self.expires)
            lower.append(start)
            upper.append(end)
        return CertificateFilter(
            level=self.level,
            grade=self.grade,
            owner=self.owner,
            server=self.server,
            issuer=self.issuer,
            q=self.q,
            expires_from=max(lower, default=None),
            expires_before=min(upper, default=None),
        )

    @property
    def after(self) -> RowKey | None:
        """Where the page starts: after this row."""
        return decode_row_key(self.cursor, self.sort) if self.cursor is not None else None

    @property
    def filtered(self) -> bool:
        """True if any filter is set."""
        return any(v is not None for k, v in self.model_dump().items() if k not in ("sort", "cursor"))


class AlarmQuery(_Query):
    """The alarm history's query: filters and where the page starts; `since`/`until` are UTC days, both in."""

    state: Blank[AlarmState] = None
    level: Blank[Level] = None
    owner: Text = None
    since: Blank[date] = None
    until: Blank[date] = None
    cursor: Text = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.since is not None and self.until is not None and self.since > self.until:
            raise ValueError("since is after until")
        if self.cursor is not None:
            decode_alarm_key(self.cursor)
        return self

    def where(self) -> AlarmFilter:
        """The store's filter: alarms alive at some moment from the start of `since` to the end of `until`."""
        return AlarmFilter(
            states=(self.state,) if self.state is not None else (),
            level=self.level,
            owner=self.owner,
            active_from=_midnight(self.since) if self.since is not None else None,
            active_until=_midnight(self.until + timedelta(days=1)) if self.until is not None else None,
        )

    @property
    def after(self) -> AlarmKey | None:
        """Where the page starts: after this alarm."""
        return decode_alarm_key(self.cursor) if self.cursor is not None else None

    @property
    def filtered(self) -> bool:
        """True if any filter is set."""
        return any(v is not None for k, v in self.model_dump().items() if k != "cursor")


def _encode(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(cursor: str, length: int) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError("cursor: not a page of this list") from exc
    if not isinstance(values, list) or len(values) != length:
        raise ValueError("cursor: not a page of this list")
    return values


def _moment(text: Any) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("a cursor's moment has a time zone")
    return moment


def encode_row_key(sort: CertificateSort, key: RowKey) -> str:
    """The cursor of the certificates page after `key` in the order `sort`."""
    return _encode([sort, key.level, key.not_after.isoformat() if key.not_after else None, key.target_key])


def decode_row_key(cursor: str, sort: CertificateSort) -> RowKey:
    """The row a cursor of the order `sort` points after; ValueError if it is no such cursor."""
    given, level, not_after, target_key = _decode(cursor, 4)
    try:
        if given != sort or not isinstance(level, str) or not isinstance(target_key, str):
            raise ValueError
        return RowKey(level, _moment(not_after) if not_after is not None else None, target_key)
    except (TypeError, ValueError) as exc:
        raise ValueError("cursor: not a page of this list in this order") from exc


def encode_alarm_key(key: AlarmKey) -> str:
    """The cursor of the alarms page after `key`."""
    return _encode([key.level, key.updated_at.isoformat(), key.alarm_id])


def decode_alarm_key(cursor: str) -> AlarmKey:
    """The alarm a cursor points after; ValueError if it is no such cursor."""
    level, updated_at, alarm_id = _decode(cursor, 3)
    try:
        if not isinstance(level, str) or not isinstance(alarm_id, str):
            raise ValueError
        return AlarmKey(level, _moment(updated_at), alarm_id)
    except (TypeError, ValueError) as exc:
        raise ValueError("cursor: not a page of this list") from exc
