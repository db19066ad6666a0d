"""Presented certificates (base64 DER) → parsed certificates, or a reason why one is malformed.

`cryptography` parses some fields lazily, so everything the rules read is touched here once: a certificate that
gets past `parse_der` will not raise later when a rule reads its names, validity or extensions.

Parsing is memoised by content in a bounded LRU: an estate re-evaluated every scan presents the same leaves and,
above all, the same few intermediates again and again, and parsing (names as RFC 4514 strings, extensions, the
key) costs more than verifying the path. What is cached is immutable; only the position in the chain is not,
and it lives on the `ParsedCert` made fresh for each chain.
"""

import base64
import binascii
import functools
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar, cast

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.utils import CryptographyDeprecationWarning

_E = TypeVar("_E", bound=x509.ExtensionType)

#: Distinct certificates kept parsed: a large estate's leaves plus every intermediate, a few MB at most.
CACHE_SIZE = 8192

#: What `cryptography` raises for a certificate it cannot read; the deprecation warning (a non-positive serial)
#: is an exception only where warnings are errors, and there it is a malformed certificate too. Some releases
#: raise KeyError for a name attribute with an unknown string tag.
_PARSE_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    CryptographyDeprecationWarning,
)

_ABSENT = object()


@dataclass(frozen=True, eq=False)
class _Lookups:
    """Extension values and SAN entries of one certificate, computed on first use and shared by every chain
    that presents it (the values are immutable; filling the dict twice from two threads is harmless)."""

    extensions: x509.Extensions
    by_kind: dict[type[x509.ExtensionType], object] = field(default_factory=dict)

    def get(self, kind: type[_E]) -> _E | None:
        found = self.by_kind.get(kind, _ABSENT)
        if found is _ABSENT:
            try:
                found = self.extensions.get_extension_for_class(kind).value
            except x509.ExtensionNotFound:
                found = None
            self.by_kind[kind] = found
        return cast("_E | None", found)  # a string: `_E | None` would be built on every call


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
    self_issued: bool = False  # subject and issuer are the same name (a root, or a self-signed leaf)
    lookups: _Lookups | None = field(default=None, repr=False)

    def extension(self, kind: type[_E]) -> _E | None:
        """The value of an extension, or None when absent."""
        if self.lookups is not None:
            return self.lookups.get(kind)
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


@functools.lru_cache(maxsize=CACHE_SIZE)
def _parse(der: bytes) -> ParsedCert | str:
    """The certificate at position 0, or why it does not parse; memoised by content."""
    try:
        cert = x509.load_der_x509_certificate(der)
        extensions = cert.extensions
        return ParsedCert(
            cert=cert,
            position=0,
            fingerprint=fingerprint_of(der),
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            serial=format(cert.serial_number, "x"),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            extensions=extensions,
            public_key=_public_key(cert),
            self_issued=cert.subject == cert.issuer,
            lookups=_Lookups(extensions),
        )
    except _PARSE_ERRORS as exc:
        return f"{type(exc).__name__}: {exc}"


@functools.lru_cache(maxsize=CACHE_SIZE)
def _decode_and_parse(text: str) -> ParsedCert | str:
    """`_parse` keyed by the base64 text itself, which spares decoding a certificate seen before."""
    try:
        der = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        return f"not base64: {exc}"
    return _parse(der)


def _at(result: ParsedCert | str, position: int) -> ParsedCert | Malformed:
    """The cached result placed at `position`: a fresh `ParsedCert` each time, because identity is what tells
    apart two copies of one certificate in a chain (the cached fields are shared)."""
    if isinstance(result, str):
        return Malformed(position, result)
    return ParsedCert(**{**result.__dict__, "position": position})  # `dataclasses.replace`, at half the cost


def parse_der(der: bytes, position: int) -> ParsedCert | Malformed:
    """Parse one DER certificate; never raises for bad input."""
    return _at(_parse(der), position)


def parse_chain(chain: list[str]) -> tuple[list[ParsedCert], list[Malformed]]:
    """Parse the presented chain (base64 DER, leaf first); returns what parsed and what did not."""
    parsed: list[ParsedCert] = []
    malformed: list[Malformed] = []
    for position, text in enumerate(chain):
        result = _at(_decode_and_parse(text), position)
        if isinstance(result, Malformed):
            malformed.append(result)
        else:
            parsed.append(result)
    return parsed, malformed


def clear_cache() -> None:
    """Forget every parsed certificate (benchmarks measure the cold path with it)."""
    _parse.cache_clear()
    _decode_and_parse.cache_clear()
