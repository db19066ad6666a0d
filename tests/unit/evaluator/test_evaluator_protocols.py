"""Cipher-suite names read both ways, protocol findings, and the severity policy and alarm level."""

import pytest

from services.evaluator.domain.ciphers import classify
from services.evaluator.domain.codes import finding
from services.evaluator.domain.level import alarm_summary, apply_policy
from services.evaluator.domain.protocol import check_protocols, normalise_version, tls_view
from shared.config import Policy
from shared.events import NegotiatedTls, TlsFacts


@pytest.mark.parametrize(
    ("name", "bits", "forward_secrecy", "weak"),
    [
        ("TLS_AES_128_GCM_SHA256", 128, True, False),
        ("TLS_CHACHA20_POLY1305_SHA256", 256, True, False),
        ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", 256, True, False),
        ("ECDHE-RSA-AES128-GCM-SHA256", 128, True, False),
        ("TLS_RSA_WITH_AES_128_CBC_SHA", 128, False, False),
        ("AES256-SHA", 256, False, False),
        ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", 168, False, True),
        ("DES-CBC3-SHA", 168, False, True),
        ("TLS_RSA_WITH_RC4_128_SHA", 128, False, True),
        ("TLS_RSA_EXPORT_WITH_RC4_40_MD5", 40, False, True),
        ("EXP-RC4-MD5", 40, False, True),
        ("TLS_RSA_WITH_NULL_SHA", 0, False, True),
        ("TLS_DH_anon_WITH_AES_128_CBC_SHA", 128, True, True),
        ("TLS_RSA_WITH_DES_CBC_SHA", 56, False, True),
    ],
)
def test_suite_traits(name: str, bits: int, forward_secrecy: bool, weak: bool) -> None:
    """Strength, forward secrecy and weakness are read from IANA and OpenSSL names alike."""
    traits = classify(name)
    assert (traits.bits, traits.forward_secrecy, traits.weak) == (bits, forward_secrecy, weak)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("TLSv1", "TLSv1.0"), ("TLSv1.2", "TLSv1.2"), ("TLS 1.3", "TLSv1.3"), ("SSLv3", "SSLv3"), ("QUIC", None)],
)
def test_version_names_are_normalised(raw: str, normal: str | None) -> None:
    """Version spellings from different libraries map onto the contract's names."""
    assert normalise_version(raw) == normal


def test_enumerated_old_protocols_and_weak_suites_are_findings() -> None:
    """TLS 1.0 and SSLv3 offered, with 3DES: tls.tls10, tls.sslv3, cipher.weak and tls.no_tls13."""
    facts = TlsFacts(
        enumerated=True,
        versions=["SSLv3", "TLSv1.0", "TLSv1.2"],
        cipher_suites={
            "SSLv3": ["TLS_RSA_WITH_3DES_EDE_CBC_SHA"],
            "TLSv1.0": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"],
            "TLSv1.2": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
        },
    )
    found = {f.code: f.severity for f in check_protocols(tls_view(facts))}
    assert found == {
        "tls.sslv3": "critical",
        "tls.tls10": "warning",
        "cipher.weak": "warning",
        "tls.no_tls13": "notice",
    }


def test_negotiated_static_rsa_lacks_forward_secrecy() -> None:
    """A negotiated TLS 1.2 static-RSA suite: cipher.no_forward_secrecy and (inferred) tls.no_tls13."""
    facts = TlsFacts(negotiated=NegotiatedTls(version="TLSv1.2", cipher_suite="TLS_RSA_WITH_AES_128_GCM_SHA256"))
    assert {f.code for f in check_protocols(tls_view(facts))} == {"cipher.no_forward_secrecy", "tls.no_tls13"}


def test_unknown_suite_name_says_nothing_about_ciphers() -> None:
    """A negotiated suite the handshake library could not name yields no cipher finding and no cipher score."""
    view = tls_view(TlsFacts(negotiated=NegotiatedTls(version="TLSv1.3", cipher_suite="unknown")))
    assert check_protocols(view) == []
    assert view.all_suites() == []


def test_no_tls_facts_no_protocol_findings() -> None:
    """A certificate file has no handshake, so nothing is said about protocols."""
    assert check_protocols(tls_view(TlsFacts())) == []


def test_notice_never_raises_the_level() -> None:
    """Only notices: the level is ok."""
    assert alarm_summary([finding("chain.contains_root", "root sent")]).level == "ok"


def test_level_is_the_worst_finding_and_triggers_are_grouped() -> None:
    """A warning and an info give warning, with both triggers in the canonical order."""
    summary = alarm_summary(
        [finding("expiry.within_90_days", "soon"), finding("chain.wrong_order", "order"), finding("tls.no_tls13", "n")]
    )
    assert summary.level == "warning"
    assert summary.triggers == ["expiry", "chain"]


def test_policy_overrides_and_drops() -> None:
    """A severity override applies to its code only; `off` removes the finding entirely."""
    findings = [finding("chain.wrong_order", "order"), finding("lifetime.too_long", "long")]
    judged = apply_policy(findings, Policy(severities={"chain.wrong_order": "off", "lifetime.too_long": "critical"}))
    assert [(f.code, f.severity) for f in judged] == [("lifetime.too_long", "critical")]
    assert alarm_summary(judged).level == "critical"
