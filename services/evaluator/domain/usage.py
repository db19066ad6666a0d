"""Is the leaf fit to be a TLS server certificate? EKU, key usage, basic constraints and lifetime.

The path builder accepts a leaf without EKU and does not look at lifetime, so these are checked here, citing
the zlint lint that flags the same problem.
"""

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from services.evaluator.domain.codes import finding
from services.evaluator.domain.parse import ParsedCert
from shared.events.evaluation import Finding

MAX_LIFETIME_DAYS = 398

_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}


def check_eku(leaf: ParsedCert) -> Finding | None:
    """`eku.no_server_auth` when the EKU extension is missing or does not list serverAuth."""
    eku = leaf.extension(x509.ExtendedKeyUsage)
    if eku is None:
        return finding(
            "eku.no_server_auth",
            "the leaf has no extendedKeyUsage extension; serverAuth is required (zlint e_sub_cert_eku_missing)",
        )
    if ExtendedKeyUsageOID.SERVER_AUTH in eku:
        return None
    listed = ", ".join(_EKU_NAMES.get(oid, oid.dotted_string) for oid in eku) or "none"
    return finding(
        "eku.no_server_auth",
        f"the leaf's extendedKeyUsage ({listed}) lacks serverAuth "
        "(zlint e_sub_cert_eku_server_auth_client_auth_missing)",
    )


def _key_usage_problems(leaf: ParsedCert, usage: x509.KeyUsage) -> list[str]:
    problems: list[str] = []
    if usage.key_cert_sign:
        problems.append("keyCertSign is set (zlint e_sub_cert_key_usage_cert_sign_bit_set)")
    if usage.crl_sign:
        problems.append("cRLSign is set (zlint e_sub_cert_key_usage_crl_sign_bit_set)")
    if isinstance(leaf.public_key, rsa.RSAPublicKey):
        if not (usage.digital_signature or usage.key_encipherment):
            problems.append("an RSA server key needs digitalSignature or keyEncipherment")
    elif not usage.digital_signature:
        problems.append("an EC or EdDSA server key needs digitalSignature (zlint e_ecdsa_allowed_ku)")
    return problems


def check_key_usage(leaf: ParsedCert) -> Finding | None:
    """`key_usage.invalid` when a keyUsage extension is present but does not fit a TLS server of this key type."""
    usage = leaf.extension(x509.KeyUsage)
    if usage is None:
        return None
    problems = _key_usage_problems(leaf, usage)
    if not problems:
        return None
    return finding("key_usage.invalid", "the leaf's keyUsage is not fit for a TLS server: " + "; ".join(problems))


def check_basic_constraints(leaf: ParsedCert) -> Finding | None:
    """`basic_constraints.ca_leaf` when the leaf says it is a CA."""
    constraints = leaf.extension(x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        return None
    return finding(
        "basic_constraints.ca_leaf",
        "the leaf has basicConstraints CA:TRUE; a server certificate must not be a CA (zlint e_sub_cert_not_is_ca)",
    )


def check_lifetime(leaf: ParsedCert) -> Finding | None:
    """`lifetime.too_long` when the validity period exceeds 398 days (CA/B Forum baseline requirements)."""
    days = (leaf.not_after - leaf.not_before).total_seconds() / 86400
    if days <= MAX_LIFETIME_DAYS:
        return None
    return finding(
        "lifetime.too_long",
        f"the leaf is valid for {days:.0f} days, more than {MAX_LIFETIME_DAYS} "
        "(zlint e_tls_server_cert_valid_time_longer_than_398_days)",
    )


def check_usage(leaf: ParsedCert) -> list[Finding]:
    """Every fitness-for-server-use finding of the leaf."""
    checks = (check_eku(leaf), check_key_usage(leaf), check_basic_constraints(leaf), check_lifetime(leaf))
    return [f for f in checks if f is not None]
