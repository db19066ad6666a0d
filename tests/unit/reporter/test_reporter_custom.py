"""Custom reports: what a filter selects (owner, server, tag, level, grade, issuer, days left), the status report
of the selection, and the tags certmon.yaml gives a target."""

from datetime import timedelta

import pytest

from services.reporter.domain.custom import custom_status_report, select, selects
from services.reporter.domain.periods import parse_period
from services.reporter.domain.status import status_of
from shared.config import CertmonConfig, ReportFilter, TargetTags
from shared.events import CertificateInfo, Evaluation, TargetRef
from tests.unit.reporter.reporter_factories import NOW, alarm, evaluation, statuses


def issued_by(item: Evaluation, issuer: str) -> Evaluation:
    """`item` with its certificate issued by `issuer`."""
    assert item.certificate is not None
    cert: CertificateInfo = item.certificate.model_copy(update={"issuer": issuer})
    return item.model_copy(update={"certificate": cert})


def on_server(item: Evaluation, server: str) -> Evaluation:
    """`item` served by `server`."""
    return item.model_copy(update={"target": TargetRef(host=item.target.host, port=443, server=server)})


def passes(report_filter: dict[str, object], item: Evaluation, tags: tuple[str, ...] = ()) -> bool:
    """Whether the filter given as in certmon.yaml selects `item` at NOW."""
    return selects(ReportFilter.model_validate(report_filter), status_of(item), tags=tags, now=NOW)


def test_an_empty_filter_selects_everything_even_without_a_certificate() -> None:
    """No condition: every target, reachable or not."""
    assert passes({}, evaluation("a.example", days=10))
    assert passes({}, evaluation("gone.example", days=None))


def test_owner_and_server_match_any_listed_value() -> None:
    """A list is any of its values; a target without an owner or server never matches one."""
    mine = on_server(evaluation("a.example", days=10, owner="shop-team"), "web-01")
    assert passes({"owner": ["platform-team", "shop-team"]}, mine)
    assert not passes({"owner": ["platform-team"]}, mine)
    assert not passes({"owner": ["shop-team"]}, evaluation("b.example", days=10))
    assert passes({"server": ["web-01"]}, mine)
    assert not passes({"server": ["web-02"]}, mine)


def test_tag_matches_any_of_the_targets_tags() -> None:
    """A tag filter holds when the target carries one of the tags listed."""
    item = evaluation("a.example", days=10)
    assert passes({"tag": ["pci", "prod"]}, item, tags=("prod", "eu"))
    assert not passes({"tag": ["pci"]}, item, tags=("prod",))
    assert not passes({"tag": ["pci"]}, item)


def test_level_and_grade() -> None:
    """Level is the evaluation's alarm level; grade its security grade (none without a certificate)."""
    item = evaluation("a.example", days=3, level="critical", grade="F")
    assert passes({"level": ["critical"], "grade": ["F", "E"]}, item)
    assert not passes({"level": ["warning"]}, item)
    assert not passes({"grade": ["A"]}, item)
    assert not passes({"grade": ["F"]}, evaluation("gone.example", days=None, level="critical"))


def test_issuer_is_a_substring_in_any_case() -> None:
    """`let's encrypt` matches `CN=R11,O=Let's Encrypt,C=US`; a target without a certificate has no issuer."""
    item = issued_by(evaluation("a.example", days=10), "CN=R11,O=Let's Encrypt,C=US")
    assert passes({"issuer": ["let's encrypt"]}, item)
    assert passes({"issuer": ["DigiCert", "R11"]}, item)
    assert not passes({"issuer": ["DigiCert"]}, item)
    assert not passes({"issuer": ["R11"]}, evaluation("gone.example", days=None))


@pytest.mark.parametrize(
    ("days", "selected"),
    [(-1.0, False), (0.0, True), (29.9, True), (30.0, True), (30.01, False)],
)
def test_days_left_range_includes_both_ends(days: float, selected: bool) -> None:
    """`days_left: {min: 0, max: 30}` holds from 0 to 30 days left at NOW, both included."""
    assert passes({"days_left": {"min": 0, "max": 30}}, evaluation("a.example", days=days)) is selected


def test_days_left_with_one_open_end_and_expired_certificates() -> None:
    """Only `max` selects expired certificates too; any range leaves a target without a certificate out."""
    assert passes({"days_left": {"max": 7}}, evaluation("old.example", days=-3))
    assert not passes({"days_left": {"min": 0}}, evaluation("old.example", days=-3))
    assert not passes({"days_left": {"max": 7}}, evaluation("gone.example", days=None))


def test_every_condition_must_hold() -> None:
    """Owner and level together: a critical certificate of another owner is left out."""
    report_filter = ReportFilter(owner=["shop-team"], level=["critical"])
    items = [
        evaluation("a.example", days=3, level="critical", owner="shop-team"),
        evaluation("b.example", days=3, level="critical", owner="platform-team"),
        evaluation("c.example", days=60, level="ok", owner="shop-team"),
    ]
    chosen = select(statuses(items), report_filter, tags=lambda key, server: (), now=NOW)
    assert [e.target_key for e in chosen] == ["a.example:443"]


def test_the_custom_status_report_holds_the_selection_and_its_alarms_only() -> None:
    """Totals, rows and alarms are those of the selected targets; the report is of kind custom, over the period."""
    items = [
        evaluation("a.example", days=3, level="critical", owner="shop-team"),
        evaluation("b.example", days=200, owner="platform-team"),
    ]
    alarms = [
        alarm("al-a", "raised", "critical", NOW - timedelta(hours=1), host="a.example"),
        alarm("al-b", "raised", "warning", NOW - timedelta(hours=1), host="b.example"),
    ]
    period = parse_period(None, "2026-W47")
    report = custom_status_report(
        statuses(items),
        alarms,
        ReportFilter(owner=["shop-team"]),
        tags=lambda key, server: (),
        now=NOW,
        period=period,
        name="shop",
    )
    assert (report.kind, report.name) == ("custom", "shop")
    assert (report.period_start, report.period_end) == (period.start, period.end)
    assert [r.target for r in report.certificates] == ["a.example:443"]
    assert report.totals.targets == 1
    assert [a.alarm_id for a in report.open_alarms] == ["al-a"]


def test_a_filter_selecting_nothing_gives_an_empty_report() -> None:
    """No target matches: the report says there is none rather than failing."""
    report = custom_status_report(
        statuses([evaluation("a.example", days=10)]),
        [],
        ReportFilter(owner=["nobody"]),
        tags=lambda key, server: (),
        now=NOW,
        period=parse_period(None, "2026-11-27"),
        name="nobody",
    )
    assert report.certificates == []
    assert report.totals.targets == 0


def test_target_tags_come_from_its_entries_and_its_server() -> None:
    """A target's tags are those of its entries in `targets` and of its server, in file order, each once."""
    config = CertmonConfig.model_validate(
        {
            "servers": {"web-01": {"tags": ["prod", "eu"]}},
            "targets": [
                {"host": "a.example", "tags": ["pci", "prod"]},
                {"host": "a.example", "tags": ["shop"]},
                {"host": "b.example", "port": 8443, "tags": ["internal"]},
            ],
        }
    )
    tags = TargetTags.of(config)
    assert tags("a.example:443", "web-01") == ("pci", "prod", "shop", "eu")
    assert tags("b.example:8443", None) == ("internal",)
    assert tags("discovered.example:443", "web-01") == ("prod", "eu")
    assert tags("discovered.example:443", "unknown") == ()
