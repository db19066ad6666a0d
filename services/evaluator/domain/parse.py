"""Presented certificates (base64 DER) → parsed certificates, or a reason why one is malformed.

`cryptography` parses some fields lazily, so everything the rules read is touched here once: a certificate that
gets past `parse_der` will not raise later when a rule reads its names, validity or extensions.

Parsing goes through the evaluator's caches (`EvaluatorCaches.parse`), which keep certificates by content: an
estate re-evaluated every scan presents the same leaves and, above all, the same few intermediates again and
again, and parsing (names as RFC 4514 strings, extensions, the key) costs more than verifying the path. What is
kept is immutable; only the position in the chain is not, and it lives on the `ParsedCert` made fresh for each
chain. Facts the rules derive from the certificate alone (its `CertificateInfo`, its usage findings...) are kept
with it (`ParsedCert.derived`), so they live and are evicted with the parsed certificate.
"""

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar, cast

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.utils import CryptographyDeprecationWarning

from services.evaluator.domain.memo import BoundedMemo
from shared.der import element

if TYPE_CHECKING:
    from services.evaluator.domain.caches import EvaluatorCaches

_E = TypeVar("_E", bound=x509.ExtensionType)
_T = TypeVar("_T")

#: A name as a hashable value with `x509.Name`'s own equality (each RDN a set of (OID, value) pairs, in order),
#: compared and hashed in C: `Name.__eq__` and `Name.__hash__` are Python code, and the chain walk and the trust
#: store compare names many times per evaluation.
NameKey = tuple[frozenset[tuple[str, str | bytes]], ...]

#: Certificates up to this size are kept parsed (real ones are 1 to 3 KiB, 10 with a very long SAN list), so the
#: caches hold at most 128 MB of DER whatever an estate presents; a larger one is parsed each time it is met.
MEMOISED_CERTIFICATE_BYTES = 16 * 1024

#: What `cryptography` raises for a certificate it cannot read. Its warnings (the deprecation warning for a
#: non-positive serial, a `UserWarning` for a name attribute of the wrong length, such as a 13-character
#: countryName) are exceptions only where warnings are errors, and there the certificate is malformed too. Some
#: releases raise KeyError for a name attribute with an unknown string tag.
_PARSE_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    CryptographyDeprecationWarning,
    UserWarning,
)

_ABSENT = object()


@dataclass(frozen=True, eq=False)
class _Shared:
    """Extension values and derived facts of one certificate, shared by every chain that presents it (the values
    are immutable; filling the facts twice from two threads is harmless)."""

    extensions: x509.Extensions
    #: Every extension's value by its class, indexed in one pass: `get_extension_for_class` scans the list with an
    #: isinstance check per extension on every call, and a leaf is asked for five. (A certificate with two of
    #: one extension never gets here: parsing refuses it.)
    by_kind: dict[type[x509.ExtensionType], x509.ExtensionType]
    facts: dict[Callable[..., object], object] = field(default_factory=dict)

    @classmethod
    def of(cls, extensions: x509.Extensions) -> "_Shared":
        return cls(extensions, {type(extension.value): extension.value for extension in extensions})

    def get(self, kind: type[_E]) -> _E | None:
        return cast("_E | None", self.by_kind.get(kind))  # a string: `_E | None` would be built on every call


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
    subject_key: NameKey = ()
    issuer_key: NameKey = ()
    dns: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    size: int = 0  # of its DER encoding
    shared: _Shared | None = field(default=None, repr=False)

    def extension(self, kind: type[_E]) -> _E | None:
        """The value of an extension, or None when absent."""
        if self.shared is not None:
            return self.shared.get(kind)
        try:
            return self.extensions.get_extension_for_class(kind).value
        except x509.ExtensionNotFound:
            return None

    @property
    def spki(self) -> bytes | None:
        """The public key as DER SubjectPublicKeyInfo, a key's identity (hashable); None when it is unreadable.
        Encoded on first use: only an issuer's is needed, so a leaf's seldom is."""
        return self.derived(_spki)

    def derived(self, compute: "Callable[[ParsedCert], _T]") -> _T:
        """`compute(self)`, memoised with this certificate: only for facts that depend on nothing but the
        certificate's content (never its position in a chain, the time, a policy or a trust store)."""
        if self.shared is None:
            return compute(self)
        facts = self.shared.facts
        found = facts.get(compute, _ABSENT)
        if found is _ABSENT:
            found = facts[compute] = compute(self)
        return cast("_T", found)

    def dns_names(self) -> list[str]:
        """The SAN DNS names, as written in the certificate."""
        return list(self.dns)

    def ip_addresses(self) -> list[str]:
        """The SAN IP addresses, as strings."""
        return list(self.ips)


@dataclass(frozen=True)
class Malformed:
    """A presented certificate that could not be parsed, and why."""

    position: int
    reason: str


def fingerprint_of(der: bytes) -> str:
    """SHA-256 fingerprint: lowercase hex, no separators."""
    return hashlib.sha256(der).hexdigest()


def name_key(name: x509.Name) -> NameKey:
    """`name` as a `NameKey`: two names are equal exactly when their keys are."""
    return tuple(frozenset((attr.oid.dotted_string, attr.value) for attr in rdn) for rdn in name.rdns)


def spki_of(key: CertificatePublicKeyTypes) -> bytes:
    """The key as DER SubjectPublicKeyInfo (canonical: equal keys give equal bytes)."""
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _spki(cert: ParsedCert) -> bytes | None:
    return spki_of(cert.public_key) if cert.public_key is not None else None


def _issuer_der(der: bytes) -> bytes:
    """The encoding of the issuer name inside a certificate's DER. Only for DER that `cryptography` has parsed
    as a certificate: it accepts strict DER alone, so every element read here is whole. Read from the bytes
    because `cryptography` gives a name only as a built `Name`."""
    at = _bounds(der, _bounds(der, 0)[0])[0]  # into Certificate, then into TBSCertificate
    if der[at] == 0xA0:  # [0] EXPLICIT version
        at = _bounds(der, at)[1]
    at = _bounds(der, _bounds(der, at)[1])[1]  # past serialNumber and the signature AlgorithmIdentifier
    return der[at : _bounds(der, at)[1]]


def _bounds(der: bytes, at: int) -> tuple[int, int]:
    bounds = element(der, at)
    if bounds is None:  # DER that `cryptography` parsed always has whole elements here
        raise ValueError(f"no DER element at byte {at}")
    return bounds


#: Names up to this size are kept (real ones are 50-300 bytes), so the issuer-name memo stays a few MB whatever
#: names certificates carry; a larger one is built each time.
_MEMOISED_NAME_BYTES = 1024


def _issuer_name(
    cert: x509.Certificate, der: bytes, known: BoundedMemo[bytes, tuple[str, NameKey]]
) -> tuple[str, NameKey]:
    """The issuer's RFC 4514 string and key, built once per distinct issuer name and then found in `known` by
    the name's encoding: leaves share a few issuers, and `cryptography` builds a name as Python objects, one per
    attribute, before the string is made."""
    encoded = _issuer_der(der)
    found = known.get(encoded, None)
    if found is None:
        issuer = cert.issuer
        found = (issuer.rfc4514_string(), name_key(issuer))
        if len(encoded) <= _MEMOISED_NAME_BYTES:
            known.put(encoded, found)
    return found


def _public_key(cert: x509.Certificate) -> CertificatePublicKeyTypes | None:
    try:
        return cert.public_key()
    except (ValueError, UnsupportedAlgorithm):  # an unknown or broken key is judged by `keys.py`, not here
        return None


def _san(extensions: x509.Extensions) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The SAN's DNS names as written and its IP addresses as strings (read here, where errors are caught)."""
    try:
        san = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (), ()
    dns = tuple(san.get_values_for_type(x509.DNSName))
    return dns, tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))


def parse_certificate(der: bytes, issuer_names: BoundedMemo[bytes, tuple[str, NameKey]]) -> ParsedCert | str:
    """The certificate at position 0, or why it does not parse (issuer names found in, and added to,
    `issuer_names`). Not kept: `EvaluatorCaches.parse` keeps it."""
    try:
        cert = x509.load_der_x509_certificate(der)
        extensions = cert.extensions
        public_key = _public_key(cert)
        subject = cert.subject  # each read builds the name anew: read once
        subject_key = name_key(subject)
        issuer, issuer_key = _issuer_name(cert, der, issuer_names)
        dns, ips = _san(extensions)
        return ParsedCert(
            cert=cert,
            position=0,
            fingerprint=fingerprint_of(der),
            subject=subject.rfc4514_string(),
            issuer=issuer,
            serial=format(cert.serial_number, "x"),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            extensions=extensions,
            public_key=public_key,
            self_issued=subject_key == issuer_key,
            subject_key=subject_key,
            issuer_key=issuer_key,
            dns=dns,
            ips=ips,
            size=len(der),
            shared=_Shared.of(extensions),
        )
    except _PARSE_ERRORS as exc:
        return f"{type(exc).__name__}: {exc}"


def decode_base64(text: str) -> bytes | str:
    """The DER of a presented certificate, or why its base64 cannot be read."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        return f"not base64: {exc}"


def _at(result: ParsedCert | str, position: int) -> ParsedCert | Malformed:
    """The cached result placed at `position`: a fresh `ParsedCert` each time, because identity is what tells
    apart two copies of one certificate in a chain (the cached fields are shared)."""
    if isinstance(result, str):
        return Malformed(position, result)
    # `dataclasses.replace` without re-running the frozen `__init__` (its per-field `object.__setattr__` calls
    # cost more than the rest of the lookup): the fields are copied as they are, already validated.
    clone = object.__new__(ParsedCert)
    clone.__dict__.update(result.__dict__)
    clone.__dict__["position"] = position
    return clone


def parse_der(der: bytes, position: int, caches: "EvaluatorCaches") -> ParsedCert | Malformed:
    """Parse one DER certificate; never raises for bad input."""
    return _at(caches.parse(der, position), position)


def parse_presented(text: str, caches: "EvaluatorCaches", position: int = 0) -> ParsedCert | None:
    """Any presented certificate (base64 DER, presented at `position`) parsed, or None when it does not parse:
    the shared cached record itself, at position 0, for reading its fields (every chain's copy of it has the same
    content)."""
    result = caches.parse_text(text, position)
    return None if isinstance(result, str) else result


def parse_chain(chain: list[str], caches: "EvaluatorCaches") -> tuple[list[ParsedCert], list[Malformed]]:
    """Parse the presented chain (base64 DER, leaf first); returns what parsed and what did not."""
    parsed: list[ParsedCert] = []
    malformed: list[Malformed] = []
    parse_text = caches.parse_text
    for position, text in enumerate(chain):
        result = _at(parse_text(text, position), position)
        if isinstance(result, Malformed):
            malformed.append(result)
        else:
            parsed.append(result)
    return parsed, malformed
