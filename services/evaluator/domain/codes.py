"""The finding codes the evaluator emits, each with its default severity and the trigger it belongs to.

The codes and default severities are the design's table; policy may change a severity or turn a code off
(see `level.py`). Codes beyond the table are marked as ours below.
"""

from dataclasses import dataclass

from shared.events.evaluation import Finding, Severity, Trigger


@dataclass(frozen=True)
class CodeSpec:
    """A finding code's default severity and trigger."""

    severity: Severity
    trigger: Trigger


CODES: dict[str, CodeSpec] = {
    "expiry.expired": CodeSpec("critical", "expiry"),
    "expiry.not_yet_valid": CodeSpec("critical", "expiry"),
    "expiry.within_7_days": CodeSpec("critical", "expiry"),
    "expiry.within_30_days": CodeSpec("warning", "expiry"),
    "expiry.within_90_days": CodeSpec("info", "expiry"),
    "signature.invalid": CodeSpec("critical", "chain"),
    "signature.weak_hash": CodeSpec("critical", "security"),
    "key.weak": CodeSpec("critical", "security"),
    "hostname.mismatch": CodeSpec("critical", "validity"),
    "chain.untrusted_root": CodeSpec("critical", "chain"),
    "chain.self_signed": CodeSpec("critical", "chain"),
    "chain.incomplete": CodeSpec("critical", "chain"),
    "revocation.revoked": CodeSpec("critical", "validity"),
    "eku.no_server_auth": CodeSpec("critical", "validity"),
    "key_usage.invalid": CodeSpec("critical", "validity"),
    "basic_constraints.ca_leaf": CodeSpec("critical", "validity"),
    "tls.sslv2": CodeSpec("critical", "security"),
    "tls.sslv3": CodeSpec("critical", "security"),
    "tls.tls10": CodeSpec("warning", "security"),
    "tls.tls11": CodeSpec("warning", "security"),
    "cipher.weak": CodeSpec("warning", "security"),
    "cipher.no_forward_secrecy": CodeSpec("warning", "security"),
    "chain.wrong_order": CodeSpec("warning", "chain"),
    "chain.extra_certificates": CodeSpec("warning", "chain"),
    "chain.intermediate_expiring": CodeSpec("warning", "chain"),
    "tls.no_tls13": CodeSpec("notice", "security"),
    "chain.contains_root": CodeSpec("notice", "chain"),
    "chain.cross_signed": CodeSpec("notice", "chain"),
    "lifetime.too_long": CodeSpec("notice", "validity"),
    "endpoint.unreachable": CodeSpec("warning", "reachability"),
    # Ours, beyond the design's minimum:
    "certificate.malformed": CodeSpec("critical", "validity"),  # a presented certificate does not parse
    "certificate.missing": CodeSpec("critical", "validity"),  # reachable, but no certificate was presented
    "chain.invalid": CodeSpec("critical", "chain"),  # a path to a known anchor exists but does not verify
    "hostname.cn_only": CodeSpec("warning", "validity"),  # matched only through the subject CN (no SAN)
    "signature.unsupported": CodeSpec("critical", "chain"),  # signed with an algorithm nobody can check
    "key.unsupported": CodeSpec("warning", "security"),  # the leaf's key algorithm is not one we can judge
    "chain.too_long": CodeSpec("warning", "chain"),  # more certificates than any real chain; the rest are ignored
    "revocation.stale_ocsp": CodeSpec("warning", "validity"),  # the stapled OCSP response is out of date
    "revocation.invalid_ocsp": CodeSpec("warning", "validity"),  # the stapled OCSP response cannot be relied on
}

#: Findings that make the grade F (SSL Labs' "T" and "M"); `grade_ignoring_trust` is computed without them.
TRUST_CODES: frozenset[str] = frozenset(
    {
        "expiry.expired",
        "expiry.not_yet_valid",
        "chain.untrusted_root",
        "chain.self_signed",
        "chain.invalid",
        "signature.invalid",
        "signature.weak_hash",
        "signature.unsupported",
        "eku.no_server_auth",
        "key_usage.invalid",
        "basic_constraints.ca_leaf",
        "revocation.revoked",
        "hostname.mismatch",
    }
)


def finding(code: str, message: str) -> Finding:
    """A finding with the code's default severity and trigger (KeyError for a code not in `CODES`)."""
    spec = CODES[code]
    return Finding(code=code, severity=spec.severity, message=message, trigger=spec.trigger)
