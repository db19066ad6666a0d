"""Presented certificates (base64 DER) → parsed certificates, or a reason why one is malformed.

`cryptography` parses some fields lazily, so everything the rules read is touched here once: a certificate that
gets past `parse_der` will not raise later when a rule reads its names, validity or extensions.
"""

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.utils import CryptographyDeprecationWarning

_E = TypeVar("_E", bound=x509.ExtensionType)

#: What `cryptography` raises for a certificate it cannot read; the deprecation warning (a non-positive serial)
#: is an exception only where warnings are errors, and there it is a malformed certificate too.
_PARSE_ERRORS = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    CryptographyDeprecationWarning,
)


@dataclass(frozen=True, eq=False)
class ParsedCert:
    """One presented certificate with the fields every rule reads, already extracted (compared by identity)."""

    cert: x509.Certificate
    position: int
    fingerprint: str
    subject: str
    issuer: str
    serial: str
    not_before: datetime
    not_after: datetime
    extensions: x509.Extensions
    public_key: CertificatePublicKeyTypes | None

    @property
    def self_issued(self) -> bool:
        """Subject and issuer are the same name (a root, or a self-signed leaf)."""
        return self.cert.subject == self.cert.issuer

    def extension(self, kind: type[_E]) -> _E | None:
        """The value of an extension, or None when absent."""
        try:
            return self.extensions.get_extension_for_class(kind).value
        except x509.ExtensionNotFound:
            return None

    def dns_names(self) -> list[str]:
        """The SAN DNS names, as written in the certificate."""
        san = self.extension(x509.SubjectAlternativeName)
        return san.get_values_for_type(x509.DNSName) if san is not None else []

    def ip_addresses(self) -> list[str]:
        """The SAN IP addresses, as strings."""
        san = self.extension(x509.SubjectAlternativeName)
        return [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] if san is not None else []


@dataclass(frozen=True)
class Malformed:
    """A presented certificate that could not be parsed, and why."""

    position: int
    reason: str


def fingerprint_of(der: bytes) -> str:
    """SHA-256 fingerprint: lowercase hex, no separators."""
    return hashlib.sha256(der).hexdigest()


def _public_key(cert: x509.Certificate) -> CertificatePublicKeyTypes | None:
    try:
        return cert.public_key()
    except (ValueError, UnsupportedAlgorithm):  # an unknown or broken key is judged by `keys.py`, not here
        return None


def parse_der(der: bytes, position: int) -> ParsedCert | Malformed:
    """Parse one DER certificate; never raises for bad input."""
    try:
        cert = x509.load_der_x509_certificate(der)
        return ParsedCert(
            cert=cert,
            position=position,
            fingerprint=fingerprint_of(der),
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            serial=format(cert.serial_number, "x"),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            extensions=cert.extensions,
            public_key=_public_key(cert),
        )
    except _PARSE_ERRORS as exc:
        return Malformed(position, f"{type(exc).__name__}: {exc}")


def parse_chain(chain: list[str]) -> tuple[list[ParsedCert], list[Malformed]]:
    """Parse the presented chain (base64 DER, leaf first); returns what parsed and what did not."""
    parsed: list[ParsedCert] = []
    malformed: list[Malformed] = []
    for position, text in enumerate(chain):
        try:
            der = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            malformed.append(Malformed(position, f"not base64: {exc}"))
            continue
        result = parse_der(der, position)
        if isinstance(result, Malformed):
            malformed.append(result)
        else:
            parsed.append(result)
    return parsed, malformed
