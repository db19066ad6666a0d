"""`certificate.observed.v1`: what an endpoint or file presented, facts only."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.events.base import Frozen
from shared.events.target import Target

ErrorKind = Literal["timeout", "refused", "dns", "tls", "protocol", "policy", "file"]


class ObservationError(Frozen):
    """Why a target could not be observed; `phase` says where a timeout hit (connect, handshake, target)."""

    kind: ErrorKind
    message: str
    phase: str | None = None


class NegotiatedTls(Frozen):
    """The version and cipher suite of the handshake that captured the chain."""

    version: str
    cipher_suite: str
    key_exchange_group: str | None = None


class CipherSuiteFacts(Frozen):
    """One cipher suite a server accepted for one protocol version (the `full` profile)."""

    version: str
    name: str  # IANA name, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    code: int  # the two-byte IANA code point (SSLv2 kinds use their three-byte value)
    forward_secrecy: bool
    aead: bool
    key_exchange_group: str | None = None  # e.g. x25519, secp256r1, ffdhe2048, or "dh" for custom DHE groups
    key_exchange_bits: int | None = None  # ECDHE curve size or DHE modulus bits


class TlsFacts(Frozen):
    """Protocol facts; the `expiry` profile fills `negotiated` only, `full` also the enumerations.

    `cipher_suites` lists accepted suites per version in the server's preference order when it has one
    (`server_preference[version]` True), else in the order found.
    """

    versions: list[str] = Field(default_factory=list)
    cipher_suites: dict[str, list[str]] = Field(default_factory=dict)
    negotiated: NegotiatedTls | None = None
    enumerated: bool = False
    ocsp_response: str | None = None  # base64 DER of a stapled OCSP response
    ocsp_stapled: bool | None = None  # None: not asked
    suites: list[CipherSuiteFacts] = Field(default_factory=list)
    server_preference: dict[str, bool | None] = Field(default_factory=dict)
    key_exchange_groups: list[str] = Field(default_factory=list)  # groups the server accepted (TLS 1.3 / ECDHE)
    connections: int = 0  # connections the observation opened (for cost comparisons)
    chain_without_sni: list[str] | None = None  # base64 DER, when the target asks to be checked without SNI too


class Observation(Frozen):
    """One observation; `chain` is base64 DER in the order presented, leaf first."""

    target: Target
    observed_at: datetime
    chain: list[str] = Field(default_factory=list)
    tls: TlsFacts = Field(default_factory=TlsFacts)
    address: str | None = None
    error: ObservationError | None = None
    duration_ms: float | None = None

    @property
    def target_key(self) -> str:
        """The key of the target observed."""
        return self.target.key
