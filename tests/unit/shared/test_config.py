"""The certmon.yaml contract: the design's example is valid, and every mistake is reported with its path."""

from pathlib import Path

import pytest
import yaml

from shared.config import (
    CertificateFacts,
    ConfigError,
    TargetEntry,
    load_config,
    parse_config,
    parse_duration,
    resolve_owners,
    resolve_policy,
)
from shared.config.loader import _ConfigYamlLoader
from shared.config.schema import Defaults
from shared.events import Target

DESIGN_EXAMPLE = """
trust:
  ca_files: []
  replace_default: false
defaults:
  owner: security-team
  interval: 1h
  profile: expiry
  thresholds: {info_days: 90, warning_days: 30, critical_days: 7}
channels:
  email:
    host: smtp.example.com
    port: 587
    starttls: true
    from: certmon@example.com
    username: certmon
    password_env: CERTMON_SMTP_PASSWORD
  snmp:
    noc: {host: 10.0.0.9, port: 162, version: v2c, community_env: CERTMON_SNMP_COMMUNITY}
owners:
  security-team: {email: [secops@example.com], delivery: group, snmp: [noc]}
  platform-team: {email: [platform@example.com]}
  shop-team:     {email: [alice@example.com, bob@example.com], delivery: individual}
servers:
  web-01: {addresses: [10.0.0.5], owner: platform-team}
targets:
  - {host: shop.example.com, port: 443, server: web-01, interval: 15m, profile: full}
  - {host: mail.example.com, port: 587, protocol: smtp}
  - {file: /etc/ssl/certs/legacy-app.pem, owner: shop-team}
certificates:
  - {match: {san: "*.shop.example.com"}, owner: shop-team, critical: true,
     thresholds: {warning_days: 45}}
  - {match: {fingerprint_sha256: "3b1f...e0"}, owner: security-team}
"""


@pytest.fixture
def design_config(tmp_path: Path):
    """The example from DESIGN.md, loaded from a file."""
    path = tmp_path / "certmon.yaml"
    path.write_text(DESIGN_EXAMPLE)
    return load_config(path)


def test_design_example_is_valid_and_yields_its_targets(design_config) -> None:
    """The documented example loads; intervals, profiles and protocols come out as written."""
    targets = design_config.scan_targets()
    assert [t.key for t in targets] == [
        "shop.example.com:443",
        "smtp://mail.example.com:587",
        "file:/etc/ssl/certs/legacy-app.pem",
    ]
    assert targets[0].interval_seconds == 900 and targets[0].profile == "full"
    assert targets[1].interval_seconds == 3600 and targets[1].protocol == "smtp"


def test_scan_targets_are_built_as_they_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """`iter_scan_targets` builds a target per entry read, not the whole estate up front; `scan_targets` all."""
    config = parse_config({"targets": [{"host": f"h{i}.example.test"} for i in range(100)]})
    built: list[str | None] = []
    to_target = TargetEntry.to_target

    def counted(entry: TargetEntry, defaults: Defaults) -> Target:
        built.append(entry.host)
        return to_target(entry, defaults)

    monkeypatch.setattr(TargetEntry, "to_target", counted)
    targets = config.iter_scan_targets()
    assert built == []
    assert next(targets).key == "h0.example.test:443"
    assert built == ["h0.example.test"]
    assert [t.key for t in config.scan_targets()] == [f"h{i}.example.test:443" for i in range(100)]


def test_well_known_port_implies_starttls_protocol() -> None:
    """A target on port 143 without a protocol is IMAP."""
    config = parse_config({"targets": [{"host": "mail.example.com", "port": 143}]})
    assert config.scan_targets()[0].protocol == "imap"


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("1h", 3600), ("1d", 86400), ("2w", 1209600), (60, 60)]
)
def test_durations(text: object, seconds: int) -> None:
    """Durations are strings with a unit (or plain seconds)."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "-5m", "0", True])
def test_bad_durations_are_refused(bad: object) -> None:
    """Nonsense, zero and negative durations are errors."""
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_every_problem_is_reported_with_its_path() -> None:
    """One pass reports type errors, unknown keys and dangling references, each at its path."""
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {
                "defaults": {"owner": "nobody", "interval": "soon"},
                "owners": {"a": {"emial": ["x@example.com"]}},
                "targets": [{"host": "a.example", "port": 70000}, {"host": "b", "file": "/x"}],
            }
        )
    paths = {p.path for p in caught.value.problems}
    assert {"defaults.interval", "owners.a.emial", "targets[0].port", "targets[1]"} <= paths


def test_dangling_references_are_reported() -> None:
    """Owners, servers and SNMP receivers named but not defined are errors at their paths."""
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {
                "defaults": {"owner": "ghost"},
                "owners": {"ops": {"snmp": ["noc"]}},
                "targets": [{"host": "a.example", "server": "web-9"}, {"host": "a.example"}],
            }
        )
    problems = {p.path: p.message for p in caught.value.problems}
    assert "ghost" in problems["defaults.owner"]
    assert "noc" in problems["owners.ops.snmp[0]"]
    assert "web-9" in problems["targets[0].server"]
    assert "duplicates" in problems["targets[1]"]


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    """Broken YAML is reported with its line."""
    path = tmp_path / "bad.yaml"
    path.write_text("targets:\n  - {host: a\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems[0].path.startswith("line ")


def test_a_large_estate_loads_with_libyaml(tmp_path: Path) -> None:
    """The loader is libyaml's where PyYAML has it (a 100,000-target file: 3 s instead of 13 s at start), and
    still reports a syntax error by its line."""
    if yaml.__with_libyaml__:
        assert issubclass(_ConfigYamlLoader, yaml.CSafeLoader)
    path = tmp_path / "certmon.yaml"
    targets = [f"  - {{host: h{i}.example, port: 443}}\n" for i in range(2000)]
    targets[1000] = "  - {host: broken.example, port: 443}}\n"  # line 1002: a brace too many
    path.write_text("targets:\n" + "".join(targets))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems[0].path.startswith("line 1002,")


def test_certificate_rule_owner_beats_server_and_critical_notifies_both(design_config) -> None:
    """A SAN rule wins over the server owner; being critical adds the server owner."""
    target = design_config.scan_targets()[0]
    owners = resolve_owners(design_config, target, CertificateFacts(san=("api.shop.example.com",)))
    assert [(o.name, o.rule) for o in owners] == [
        ("shop-team", "certificates[0] san=*.shop.example.com"),
        ("platform-team", "server web-01 (critical certificate)"),
    ]
    assert owners[0].delivery == "individual" and owners[0].email == ["alice@example.com", "bob@example.com"]


def test_server_owner_by_resolved_address_then_default(design_config) -> None:
    """Without a rule, the server found by address owns the target; with neither, the default owner."""
    target = Target(host="other.example.com")
    by_address = resolve_owners(design_config, target, CertificateFacts(), address="10.0.0.5")
    assert [(o.name, o.rule) for o in by_address] == [("platform-team", "server web-01")]
    fallback = resolve_owners(design_config, target, CertificateFacts(), address="192.0.2.1")
    assert [(o.name, o.rule) for o in fallback] == [("security-team", "default")]


def test_abbreviated_fingerprint_rule_matches_prefix_and_suffix(design_config) -> None:
    """`3b1f...e0` as written in the design matches a fingerprint starting 3b1f and ending e0."""
    fingerprint = "3b1f" + "0" * 58 + "e0"
    owners = resolve_owners(design_config, Target(host="x.example"), CertificateFacts(fingerprint_sha256=fingerprint))
    assert owners[0].name == "security-team" and owners[0].rule.startswith("certificates[1]")


def test_policy_layers_defaults_server_and_certificate_rules(design_config) -> None:
    """Thresholds: defaults, then the server's, then matching certificate rules."""
    target = design_config.scan_targets()[0]
    policy = resolve_policy(design_config, target, CertificateFacts(san=("www.shop.example.com",)))
    assert (policy.info_days, policy.warning_days, policy.critical_days) == (90, 45, 7)
    assert policy.critical_certificate is True
    plain = resolve_policy(design_config, target, CertificateFacts(san=("www.example.org",)))
    assert plain.warning_days == 30 and plain.critical_certificate is False


def test_owner_policy_sits_between_defaults_and_server() -> None:
    """An owner's thresholds and severities apply to what it owns, and a certificate rule still wins."""
    config = parse_config(
        {
            "defaults": {"owner": "ops"},
            "owners": {"ops": {"thresholds": {"warning_days": 40}, "severities": {"tls.no_tls13": "off"}}, "shop": {}},
            "certificates": [{"match": {"san": "shop.example"}, "owner": "shop", "thresholds": {"warning_days": 50}}],
        }
    )
    target = Target(host="a.example")
    owned = resolve_policy(config, target, CertificateFacts(san=("a.example",)))
    assert owned.warning_days == 40 and owned.severities == {"tls.no_tls13": "off"}
    assert owned.sources == ("defaults", "owner ops")
    ruled = resolve_policy(config, target, CertificateFacts(san=("shop.example",)))
    assert ruled.warning_days == 50 and ruled.sources[1] == "owner shop"
