"""The reporter's `/metrics` speaks ssl_exporter's and x509-certificate-exporter's names and labels, as documented
(tests/fixtures/exporters), so their dashboards and alert rules work unchanged."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from services.reporter.adapters.metric_labels import name_fields
from services.reporter.adapters.metrics import exposition
from shared.events import (
    AlarmSummary,
    CertificateInfo,
    Evaluation,
    ExpiryInfo,
    KeyInfo,
    ObservationError,
    SecurityInfo,
    TargetRef,
)
from shared.events.evaluation import ChainInfo, PresentedCertificate, RevocationInfo, TlsSummary
from shared.events.observation import NegotiatedTls

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "exporters"
NOW = datetime(2026, 11, 27, 6, 30, tzinfo=UTC)
#: Documented families certmon does not serve, and why; the test fails if one appears without being checked.
NOT_SERVED = {
    "ssl_ocsp_response_this_update": "the evaluation keeps no thisUpdate of the stapled response",
    "x509_source_up": "per exporter source; certmon's sources are its targets, covered by ssl_probe_success",
    "x509_source_bundles": "per exporter source, as above",
    "x509_source_errors_total": "a counter of read events; /metrics is recomputed from the latest evaluations",
    "x509_scrape_duration_seconds": "the exporter process's own health",
    "x509_exporter_build_info": "the exporter process's own build",
}
#: Families without a target label: they count across the estate.
ESTATE_WIDE = {"x509_read_errors"}
CA = "CN=certmon Test Intermediate,O=certmon tests,C=FR"
ROOT = "CN=certmon Test Root,O=certmon tests,C=FR"


def documented() -> dict[str, list[str] | None]:
    """Every documented metric of both exporters with its label names (None: the reference lists none)."""
    metrics: dict[str, list[str] | None] = {}
    for name in ("ssl_exporter.json", "x509_certificate_exporter.json"):
        metrics.update(json.loads((FIXTURES / name).read_text())["metrics"])
    return metrics


def presented(fingerprint: str, subject: str, issuer: str, serial: str, days: int) -> PresentedCertificate:
    """A chain certificate expiring `days` days after NOW."""
    return PresentedCertificate(
        fingerprint_sha256=fingerprint,
        subject=subject,
        issuer=issuer,
        serial=serial,
        not_before=NOW - timedelta(days=400),
        not_after=NOW + timedelta(days=days),
    )


def evaluation(
    target: TargetRef,
    key: str,
    *,
    subject: str,
    days: int,
    serial: str = "0a1b",
    chain: list[PresentedCertificate] | None = None,
    verified: list[str] | None = None,
    tls: str | None = "TLSv1.3",
    revocation: RevocationInfo | None = None,
) -> Evaluation:
    """A successful evaluation of `target` whose leaf (`subject`) expires `days` days after NOW."""
    leaf = CertificateInfo(
        fingerprint_sha256=f"{key}-leaf",
        subject=subject,
        issuer=CA,
        serial=serial,
        not_before=NOW - timedelta(days=60),
        not_after=NOW + timedelta(days=days),
        san=["shop.example.com", "www.shop.example.com", "192.0.2.7"],
        key=KeyInfo(type="EC", bits=256, curve="secp256r1"),
        signature_algorithm="ecdsa-with-SHA256",
    )
    leaf_presented = presented(leaf.fingerprint_sha256, subject, CA, serial, days)
    return Evaluation(
        target=target,
        target_key=key,
        observed_at=NOW,
        evaluated_at=NOW,
        reachable=True,
        certificate=leaf,
        chain=ChainInfo(
            presented=[leaf_presented, *(chain or [])], trusted=bool(verified), verified_path=verified or []
        ),
        tls=TlsSummary(negotiated=NegotiatedTls(version=tls, cipher_suite="TLS_AES_128_GCM_SHA256") if tls else None),
        expiry=ExpiryInfo(days_remaining=days, status="expired" if days < 0 else "valid", renewal_window="plan"),
        security=SecurityInfo(grade="A", grade_ignoring_trust="A", score=92),
        alarm=AlarmSummary(level="critical" if days < 0 else "ok"),
        revocation=revocation,
    )


INTERMEDIATE = presented("ca-fp", CA, ROOT, "1f", 900)
SHOP = evaluation(
    TargetRef(host="shop.example.com", port=443, sni="shop.example.com"),
    "shop.example.com:443",
    subject="CN=shop.example.com,OU=Web,O=Shop Ltd,L=Lyon,ST=ARA,C=FR",
    days=40,
    chain=[INTERMEDIATE],
    verified=["shop.example.com:443-leaf", "ca-fp", "root-fp-from-the-trust-store"],
    revocation=RevocationInfo(
        ocsp_stapled=True, status="good", produced_at=NOW - timedelta(hours=2), next_update=NOW + timedelta(days=3)
    ),
)
OLD = evaluation(
    TargetRef(host="old.example.com", port=8443, sni="old.example.com"),
    "old.example.com:8443",
    subject="CN=old.example.com",
    days=-3,
    tls="TLSv1.2",
    revocation=RevocationInfo(ocsp_stapled=True, status="revoked", revoked_at=NOW - timedelta(days=10)),
)
FILE = evaluation(
    TargetRef(protocol="file", file="/etc/ssl/certs/legacy-app.pem"),
    "file:/etc/ssl/certs/legacy-app.pem",
    subject="CN=legacy-app.internal,O=Legacy",
    days=200,
    chain=[INTERMEDIATE],
    tls=None,
)
DOWN = Evaluation(
    target=TargetRef(host="down.example.com", port=443, sni="down.example.com"),
    target_key="down.example.com:443",
    observed_at=NOW,
    evaluated_at=NOW,
    reachable=False,
    error=ObservationError(kind="refused", message="connection refused"),
    alarm=AlarmSummary(level="critical", triggers=["reachability"]),
)


@pytest.fixture(scope="module")
def families() -> dict[str, list[Sample]]:
    """The samples of each family in one scrape of the four targets, parsed as Prometheus parses them."""
    text = exposition([SHOP, OLD, FILE, DOWN], now=NOW).decode()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def one(samples: list[Sample], **labels: str) -> Sample:
    """The only sample whose labels include `labels`."""
    found = [s for s in samples if labels.items() <= s.labels.items()]
    assert len(found) == 1, f"{len(found)} samples with {labels}"
    return found[0]


def test_every_documented_family_is_served_with_exactly_its_documented_labels(
    families: dict[str, list[Sample]],
) -> None:
    """Each documented metric is a family whose every sample has the documented label names, plus `target` (one
    /metrics serves every target); the families certmon cannot fill are the listed ones, and absent."""
    for name, label_names in documented().items():
        if name in NOT_SERVED:
            assert name not in families, f"{name} is served now: check its labels here"
            continue
        assert label_names is not None, f"{name}: the fixture lists no labels"
        assert families.get(name), f"{name} has no samples"
        expected = set(label_names) | (set() if name in ESTATE_WIDE else {"target"})
        for sample in families[name]:
            assert set(sample.labels) == expected, f"{name}: {sorted(sample.labels)}"


def test_ssl_exporter_families_carry_the_certificates_and_probe_facts(families: dict[str, list[Sample]]) -> None:
    """Certificates as presented, the verified path (certificates the evaluation describes), TLS version, OCSP and
    probe outcome, per target, with ssl_exporter's label spelling (decimal serial, comma-framed lists)."""
    leaf = one(families["ssl_cert_not_after"], target="shop.example.com:443", cn="shop.example.com")
    assert leaf.value == int((NOW + timedelta(days=40)).timestamp())
    assert leaf.labels | {"target": ""} == {
        "serial_no": str(0x0A1B),
        "issuer_cn": "certmon Test Intermediate",
        "cn": "shop.example.com",
        "dnsnames": ",shop.example.com,www.shop.example.com,",
        "ips": ",192.0.2.7,",
        "emails": "",
        "ou": ",Web,",
        "target": "",
    }
    assert one(families["ssl_cert_not_after"], target="shop.example.com:443", cn="certmon Test Intermediate")
    assert {s.labels["cn"] for s in families["ssl_verified_cert_not_after"]} == {
        "shop.example.com",
        "certmon Test Intermediate",
    }
    assert {s.labels["chain_no"] for s in families["ssl_verified_cert_not_before"]} == {"0"}
    files = [s for s in families["ssl_file_cert_not_after"] if s.labels["file"] == "/etc/ssl/certs/legacy-app.pem"]
    assert {s.labels["cn"] for s in files} == {"legacy-app.internal", "certmon Test Intermediate"}
    assert not [s for s in families["ssl_cert_not_after"] if s.labels["target"].startswith("file:")]
    versions = {s.labels["target"]: s.labels["version"] for s in families["ssl_tls_version_info"]}
    assert versions == {"shop.example.com:443": "TLS 1.3", "old.example.com:8443": "TLS 1.2"}
    success = {s.labels["target"]: s.value for s in families["ssl_probe_success"]}
    assert success == {
        "shop.example.com:443": 1,
        "old.example.com:8443": 1,
        "file:/etc/ssl/certs/legacy-app.pem": 1,
        "down.example.com:443": 0,
    }
    probers = {s.labels["target"]: s.labels["prober"] for s in families["ssl_prober"]}
    assert probers["file:/etc/ssl/certs/legacy-app.pem"] == "file"
    assert probers["down.example.com:443"] == "tcp"
    assert one(families["ssl_ocsp_response_status"], target="shop.example.com:443").value == 0
    assert one(families["ssl_ocsp_response_status"], target="old.example.com:8443").value == 1
    revoked_at = one(families["ssl_ocsp_response_revoked_at"], target="old.example.com:8443").value
    assert revoked_at == int((NOW - timedelta(days=10)).timestamp())


def test_x509_families_carry_the_full_label_set_and_expiry_relative_to_now(
    families: dict[str, list[Sample]],
) -> None:
    """Subject and issuer fields, decimal serial, file name and path ("" for endpoints), expired 0/1 and the
    relative seconds against the scrape's clock; an unreadable target is one error series and one read error."""
    shop = one(families["x509_cert_not_after"], target="shop.example.com:443")
    assert shop.value == int((NOW + timedelta(days=40)).timestamp())
    assert {k: v for k, v in shop.labels.items() if k.startswith("subject_")} == {
        "subject_C": "FR",
        "subject_ST": "ARA",
        "subject_L": "Lyon",
        "subject_O": "Shop Ltd",
        "subject_OU": "Web",
        "subject_CN": "shop.example.com",
    }
    assert (shop.labels["issuer_O"], shop.labels["issuer_L"], shop.labels["serial_number"]) == (
        "certmon tests",
        "",
        "2587",
    )
    assert (shop.labels["filename"], shop.labels["filepath"]) == ("", "")
    expired = {s.labels["target"]: s.value for s in families["x509_cert_expired"]}
    assert expired == {"shop.example.com:443": 0, "old.example.com:8443": 1, "file:/etc/ssl/certs/legacy-app.pem": 0}
    assert one(families["x509_cert_expires_in_seconds"], target="old.example.com:8443").value == -3 * 86400
    assert one(families["x509_cert_valid_since_seconds"], target="shop.example.com:443").value == 60 * 86400
    in_file = [s for s in families["x509_cert_not_before"] if s.labels["target"].startswith("file:")]
    assert {(s.labels["subject_CN"], s.labels["filename"]) for s in in_file} == {
        ("legacy-app.internal", "legacy-app.pem"),
        ("certmon Test Intermediate", "legacy-app.pem"),
    }
    down = one(families["x509_cert_error"], target="down.example.com:443")
    assert down.value == 1 and down.labels["serial_number"] == down.labels["subject_CN"] == ""
    assert one(families["x509_cert_error"], target="shop.example.com:443").value == 0
    assert [s.value for s in families["x509_read_errors"]] == [1]


def test_certmon_families_give_level_grade_and_days_left_per_target(families: dict[str, list[Sample]]) -> None:
    """certmon's own families keep their names and labels and add level, grade and days left per target."""
    assert {s.labels["level"]: s.value for s in families["certmon_certificates"]} == {
        "critical": 2,
        "warning": 0,
        "info": 0,
        "ok": 2,
    }
    shop = one(families["certmon_cert_not_after_timestamp_seconds"], target="shop.example.com:443")
    assert set(shop.labels) == {"target", "subject_CN", "issuer_CN", "serial_number"}
    assert one(families["certmon_cert_days_remaining"], target="old.example.com:8443").value == -3
    levels = {s.labels["target"]: s.value for s in families["certmon_target_alarm_level"]}
    assert levels == {
        "shop.example.com:443": 0,
        "old.example.com:8443": 3,
        "file:/etc/ssl/certs/legacy-app.pem": 0,
        "down.example.com:443": 3,
    }
    assert one(families["certmon_target_grade_info"], target="shop.example.com:443").labels["grade"] == "A"


@pytest.mark.parametrize(
    "subject",
    [
        r'CN=<script>alert("x")</script>\, \\evil,O=" injected="1',
        'CN=line\nbreak} 1\nssl_probe_success{target="forged"} 1',
        r"CN=caf\C3\A9 \2C \"quoted\"",
    ],
)
def test_attacker_chosen_subjects_are_escaped_and_read_back_unchanged(subject: str) -> None:
    """Quotes, backslashes, angle brackets and line feeds in a subject (or a file path) stay inside their label
    value: the exposition parses, holds no forged series, and gives the value back as the certificate has it."""
    path = '/tmp/"odd"\\dir\n/cert.pem'
    file = evaluation(TargetRef(protocol="file", file=path), f"file:{path}", subject=subject, days=10, tls=None)
    text = exposition([file], now=NOW).decode()
    parsed: dict[str, Any] = {f.name: f.samples for f in text_string_to_metric_families(text)}
    [probe] = parsed["ssl_probe_success"]
    assert probe.labels == {"target": f"file:{path}"}
    [x509] = parsed["x509_cert_not_after"]
    assert x509.labels["subject_CN"] == name_fields(subject)["CN"]
    assert (x509.labels["filepath"], x509.labels["filename"]) == (path, "cert.pem")
    leaf = one(parsed["ssl_file_cert_not_after"], file=path, serial_no=str(0x0A1B))
    assert leaf.labels["cn"] == name_fields(subject)["CN"]


def test_rfc4514_escapes_are_read_as_the_certificate_has_them() -> None:
    """Escaped separators and UTF-8 hex pairs come out as the characters they stand for."""
    fields = name_fields(r"CN=Acme\, Inc.,O=caf\C3\A9 \2B co,OU=a+OU=b")
    assert fields == {"CN": "Acme, Inc.", "O": "café + co", "OU": "a"}
