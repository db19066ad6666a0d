"""Which configured target an evaluation is about, and who owns its alarms."""

from datetime import UTC, datetime, timedelta

from services.alarmer.domain.ownership import configured_target, owners_for, target_from_ref
from shared.config import parse_config
from shared.events import AlarmSummary, CertificateInfo, Evaluation, KeyInfo, TargetRef

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
    target = configured_target(CONFIG, evaluation(ref, "app.example.com:443"))
    assert target.owner == "legacy-team"
    assert [o.rule for o in owners_for(CONFIG, target, certificate("app.example.com"))] == [
        "target app.example.com:443"
    ]


def test_server_resolved_by_the_evaluator_fills_in() -> None:
    """A target not in the config keeps the server its evaluation names, so the server owner is told."""
    ref = TargetRef(host="new.example.com", port=443, sni="new.example.com", server="web-01")
    target = configured_target(CONFIG, evaluation(ref, "new.example.com:443"))
    assert [o.name for o in owners_for(CONFIG, target, certificate("new.example.com"))] == ["platform-team"]


def test_target_tags_reach_certificate_rules() -> None:
    """A certificate rule matching a tag applies to certificates served by a target with that tag."""
    ref = TargetRef(host="mail.example.com", port=587, sni="mail.example.com", protocol="smtp")
    target = configured_target(CONFIG, evaluation(ref, "smtp://mail.example.com:587"))
    assert [o.name for o in owners_for(CONFIG, target, certificate("mail.example.com"))] == ["tagged-team"]


def test_no_certificate_goes_to_the_infrastructure_owner() -> None:
    """Without a certificate (unreachable), the target's server owner or the default owner is told."""
    ref = TargetRef(host="other.example.com", port=443, sni="other.example.com")
    target = configured_target(CONFIG, evaluation(ref, "other.example.com:443"))
    assert [(o.name, o.rule) for o in owners_for(CONFIG, target, None)] == [("security-team", "default")]
