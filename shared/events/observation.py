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


class TlsFacts(Frozen):
    """Protocol facts; the `expiry` profile fills `negotiated` only, `full` also the enumerations."""

    versions: list[str] = Field(default_factory=list)
    cipher_suites: dict[str, list[str]] = Field(default_factory=dict)
    negotiated: NegotiatedTls | None = None
    enumerated: bool = False
    ocsp_response: str | None = None  # base64 DER of a stapled OCSP response


class Observation(Frozen):
    """One observation; `chain` is base64 DER in the order presented, leaf first."""

    target: Target
    observed_at: datetime
    chain: list[str] = Field(default_factory=list)
    tls: TlsFacts = Field(default_factory=TlsFacts)
    address: str | None = None
    error: ObservationError | None = None
    duration_ms: float | None = None
