"""Which configured target an evaluation is about, and who owns its alarms."""

from datetime import UTC, datetime, timedelta

import pytest

from services.alarmer.domain.ownership import Ownership, target_from_ref
from shared.config import CertmonConfig, parse_config, resolve_owners, resolve_policy
from shared.events import AlarmSummary, CertificateInfo, Evaluation, KeyInfo, Target, TargetRef

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

CONFIG = parse_config(
    {
        "defaults": {"owner": "security-team"},
        "owners": {"security-team": {}, "platform-team": {}, "legacy-team": {}, "tagged-team": {}},
        "servers": {"web-01": {"addresses": ["10.0.0.5"], "owner": "platform-team"}},
        "targets": [
            {"host": "mail.example.com", "port": 587, "tags": ["pci"]},
            {"host": "app.example.com", "owner": "legacy-team"},
        ],
        "certificates": [{"match": {"tag": "pci"}, "owner": "tagged-team"}],
    }
)
OWNERSHIP = Ownership(CONFIG)


def certificate(name: str) -> CertificateInfo:
    """A leaf certificate for `name`."""
    return CertificateInfo(
        fingerprint_sha256="c" * 64,
        subject=f"CN={name}",
        issuer="CN=Example CA",
        serial="01",
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=90),
        san=[name],
        key=KeyInfo(type="RSA", bits=2048),
        signature_algorithm="sha256WithRSAEncryption",
    )


def evaluation(ref: TargetRef, key: str) -> Evaluation:
    """A reachable evaluation of `ref` under the target key `key`."""
    return Evaluation(
        target=ref,
        target_key=key,
        observed_at=NOW,
        evaluated_at=NOW,
        reachable=True,
        certificate=certificate(ref.host or "file"),
        alarm=AlarmSummary(level="ok"),
    )


def test_target_from_ref_keeps_the_evaluation_key() -> None:
    """A target rebuilt from a STARTTLS evaluation's reference has the same key the evaluator used."""
    ref = TargetRef(host="mail.example.com", port=587, sni="mail.example.com", protocol="smtp")
    assert target_from_ref(ref).key == "smtp://mail.example.com:587"


def test_target_from_ref_of_a_file() -> None:
    """A certificate file's reference becomes a file target."""
    ref = TargetRef(file="/etc/ssl/app.pem", protocol="file", server="web-01")
    assert target_from_ref(ref).key == "file:/etc/ssl/app.pem"


def test_configured_target_brings_the_configured_owner() -> None:
    """The config entry with the evaluation's key supplies the target's owner."""
    ref = TargetRef(host="app.example.com", port=443, sni="app.example.com")
    target = OWNERSHIP.configured_target(evaluation(ref, "app.example.com:443"))
    assert target.owner == "legacy-team"
    assert [o.rule for o in OWNERSHIP.owners_for(target, certificate("app.example.com"))] == [
        "target app.example.com:443"
    ]


def test_server_resolved_by_the_evaluator_fills_in() -> None:
    """A target not in the config keeps the server its evaluation names, so the server owner is told."""
    ref = TargetRef(host="new.example.com", port=443, sni="new.example.com", server="web-01")
    target = OWNERSHIP.configured_target(evaluation(ref, "new.example.com:443"))
    assert [o.name for o in OWNERSHIP.owners_for(target, certificate("new.example.com"))] == ["platform-team"]


def test_target_tags_reach_certificate_rules() -> None:
    """A certificate rule matching a tag applies to certificates served by a target with that tag."""
    ref = TargetRef(host="mail.example.com", port=587, sni="mail.example.com", protocol="smtp")
    target = OWNERSHIP.configured_target(evaluation(ref, "smtp://mail.example.com:587"))
    assert [o.name for o in OWNERSHIP.owners_for(target, certificate("mail.example.com"))] == ["tagged-team"]


def test_no_certificate_goes_to_the_infrastructure_owner() -> None:
    """Without a certificate (unreachable), the target's server owner or the default owner is told."""
    ref = TargetRef(host="other.example.com", port=443, sni="other.example.com")
    target = OWNERSHIP.configured_target(evaluation(ref, "other.example.com:443"))
    assert [(o.name, o.rule) for o in OWNERSHIP.owners_for(target, None)] == [("security-team", "default")]


#: A key listed twice (the first entry's owner wins, both entries' tags count), servers with tags, file targets.
#: Validated by the schema alone: the loader refuses a duplicate key, but a config built in code may hold one.
INDEXED = CertmonConfig.model_validate(
    {
        "defaults": {"owner": "security-team"},
        "owners": {"security-team": {}, "platform-team": {}, "legacy-team": {}, "pci-team": {}, "files-team": {}},
        "servers": {
            "web-01": {"addresses": ["10.0.0.5"], "owner": "platform-team", "tags": ["dmz", "pci"]},
            "db-01": {"owner": "platform-team", "tags": ["internal"]},
        },
        "targets": [
            {"host": "shop.example.com", "owner": "legacy-team", "tags": ["pci"]},
            {"file": "/etc/ssl/app.pem", "server": "db-01", "owner": "files-team"},
            {"host": "shop.example.com", "port": 443, "owner": "platform-team", "tags": ["web", "pci"]},
            {"file": "/etc/ssl/edge.pem", "tags": ["edge"]},
        ],
        "certificates": [
            {"match": {"tag": "pci"}, "owner": "pci-team", "critical": True},
            {"match": {"tag": "internal"}, "reminders": {"warning": "1d"}},
        ],
    }
)
SHOP = TargetRef(host="shop.example.com", port=443, sni="shop.example.com")
EDGE_ON_WEB = TargetRef(file="/etc/ssl/edge.pem", protocol="file", server="web-01")
APP_ON_WEB = TargetRef(file="/etc/ssl/app.pem", protocol="file", server="web-01")
NEW_ON_DB = TargetRef(host="new.example.com", port=8443, sni="new.example.com", server="db-01")
CASES = [
    (SHOP, "shop.example.com:443"),
    (EDGE_ON_WEB, "file:/etc/ssl/edge.pem"),
    (APP_ON_WEB, "file:/etc/ssl/app.pem"),
    (NEW_ON_DB, "new.example.com:8443"),
    (TargetRef(host="other.example.com", port=443), "other.example.com:443"),
]


def scanned_target(key: str, ref: TargetRef) -> Target:
    """The configured target as found by scanning every entry (what the alarmer did before it had an index)."""
    for target in INDEXED.scan_targets():
        if target.key == key:
            return target.model_copy(update={"server": ref.server}) if target.server is None and ref.server else target
    return target_from_ref(ref)


def scanned_tags(target: Target) -> tuple[str, ...]:
    """The target's tags found by scanning every entry, then its server's."""
    tags = [
        tag for entry in INDEXED.targets if entry.to_target(INDEXED.defaults).key == target.key for tag in entry.tags
    ]
    if target.server is not None and target.server in INDEXED.servers:
        tags.extend(INDEXED.servers[target.server].tags)
    return tuple(dict.fromkeys(tags))


def test_index_resolves_what_a_scan_of_the_whole_config_does() -> None:
    """For keyed, unkeyed and server-filled targets the index gives the same target, tags, owners and cadence."""
    ownership = Ownership(INDEXED)
    for ref, key in CASES:
        target = ownership.target_for(key, ref)
        assert target == scanned_target(key, ref), key
        for cert in (certificate("shop.example.com"), None):
            facts = ownership.certificate_facts(target, cert)
            assert facts.tags == scanned_tags(target), key
            assert ownership.owners_for(target, cert) == resolve_owners(INDEXED, target, facts), key
            for level in ("critical", "warning", "info"):
                expected = resolve_policy(INDEXED, target, facts).reminder_seconds(level)
                assert ownership.reminder_seconds(target, cert, level) == expected, (key, level)


def test_a_key_listed_twice_takes_the_first_entry_and_both_entries_tags() -> None:
    """The first entry with a key supplies the target; every entry with it and its server add their tags once."""
    ownership = Ownership(INDEXED)
    target = ownership.target_for("shop.example.com:443", SHOP)
    assert target.owner == "legacy-team"
    assert ownership.certificate_facts(target, None).tags == ("pci", "web")


def test_server_named_by_the_evaluation_fills_in_with_its_tags() -> None:
    """A configured target without a server takes the evaluation's, and that server's tags reach the rules."""
    ownership = Ownership(INDEXED)
    target = ownership.target_for("file:/etc/ssl/edge.pem", EDGE_ON_WEB)
    assert (target.server, target.owner) == ("web-01", None)
    assert ownership.certificate_facts(target, None).tags == ("edge", "dmz", "pci")
    assert [o.name for o in ownership.owners_for(target, certificate("edge.example.com"))] == [
        "pci-team",
        "platform-team",
    ]


def test_configured_server_wins_over_the_evaluations() -> None:
    """A configured target's own server is kept when the evaluation names another."""
    ownership = Ownership(INDEXED)
    target = ownership.target_for("file:/etc/ssl/app.pem", APP_ON_WEB)
    assert (target.server, target.owner) == ("db-01", "files-team")
    assert ownership.certificate_facts(target, None).tags == ("internal",)
    assert ownership.reminder_seconds(target, None, "warning") == 86400


def test_unconfigured_key_is_built_from_the_evaluation() -> None:
    """A key the config does not list becomes the evaluation's target, its server's tags and owner applying."""
    ownership = Ownership(INDEXED)
    target = ownership.target_for("new.example.com:8443", NEW_ON_DB)
    assert target == target_from_ref(NEW_ON_DB)
    assert ownership.certificate_facts(target, None).tags == ("internal",)
    assert [(o.name, o.rule) for o in ownership.owners_for(target, None)] == [("platform-team", "server db-01")]


def test_an_index_of_another_config_is_refused() -> None:
    """A consumer given an index built from a different config refuses it rather than resolve from the wrong file."""
    shared = Ownership(INDEXED)
    assert Ownership.of(INDEXED, shared) is shared
    assert Ownership.of(CONFIG, None).config is CONFIG
    with pytest.raises(ValueError, match="another config"):
        Ownership.of(CONFIG, shared)
