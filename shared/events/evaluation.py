"""`certificate.evaluated.v1`: the evaluation object (also what `certmon check --json` prints).

Field names here are the published contract: add fields, never rename or drop one.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.events.base import Frozen
from shared.events.observation import NegotiatedTls, ObservationError
from shared.events.target import TargetRef

Severity = Literal["critical", "warning", "info", "notice"]
Level = Literal["critical", "warning", "info", "ok"]
Trigger = Literal["expiry", "security", "chain", "validity", "reachability"]
KeyType = Literal["RSA", "EC", "Ed25519", "Ed448", "DSA", "unknown"]
Grade = Literal["A+", "A", "A-", "B", "C", "D", "E", "F"]
#: Where certmon found the intermediates a server did not send: intermediates it had seen, or AIA caIssuers.
CompletedFrom = Literal["cache", "aia"]

#: Order used to pick "the worst" of several levels (and the `certmon check` exit code).
LEVEL_ORDER: dict[str, int] = {"ok": 0, "info": 1, "warning": 2, "critical": 3}
SEVERITY_ORDER: dict[str, int] = {"notice": 0, "info": 1, "warning": 2, "critical": 3}


class KeyInfo(Frozen):
    """The leaf's public key."""

    type: KeyType
    bits: int | None = None
    curve: str | None = None


class CertificateInfo(Frozen):
    """The leaf certificate."""

    fingerprint_sha256: str
    subject: str
    issuer: str
    serial: str
    not_before: datetime
    not_after: datetime
    san: list[str] = Field(default_factory=list)
    key: KeyInfo
    signature_algorithm: str
    spki_sha256: str | None = Field(
        default=None,
        description="SHA-256 of the leaf's SubjectPublicKeyInfo (DER), hex: the same key in two certificates has the "
        "same value, so a reissue with the same key can be told from a new key; null when the key is unreadable "
        "and in evaluations older than the field",
    )


class PresentedCertificate(Frozen):
    """One certificate of the chain as presented."""

    fingerprint_sha256: str
    subject: str
    issuer: str
    not_after: datetime
    not_before: datetime | None = Field(default=None, description="null in evaluations older than the field")
    serial: str | None = None
    key: KeyInfo | None = None
    signature_algorithm: str | None = None


class ChainInfo(Frozen):
    """Chain facts: what was presented and what path was verified to which anchor."""

    presented: list[PresentedCertificate] = Field(default_factory=list)
    complete: bool = False
    trusted: bool = False
    ordered: bool = True
    contains_root: bool = False
    cross_signed: bool = False
    verified_path: list[str] = Field(default_factory=list)
    completed_from: CompletedFrom | None = Field(
        default=None,
        description="where certmon found the intermediates it added to complete the chain (aia if any was fetched, "
        "else cache); null when it added none",
    )


class TlsSummary(Frozen):
    """Protocol facts as judged."""

    versions: list[str] = Field(default_factory=list)
    cipher_suites: dict[str, list[str]] = Field(default_factory=dict)
    forward_secrecy: bool | None = None
    negotiated: NegotiatedTls | None = None


class ExpiryInfo(Frozen):
    """Days remaining (fractional) and what they mean."""

    days_remaining: float
    status: Literal["valid", "expiring_soon", "expired", "not_yet_valid"]
    renewal_window: Literal["plan", "initiate", "urgent", "critical", "expired"]


class SecurityCap(Frozen):
    """One cap or warning on the grade, with the reason a user reads."""

    grade: str
    reason: str


class SecurityInfo(Frozen):
    """The SSL Labs-style rating; `basis` says what data it rests on."""

    grade: Grade
    grade_ignoring_trust: Grade
    score: int
    protocol_score: int | None = None
    key_exchange_score: int | None = None
    cipher_score: int | None = None
    caps: list[SecurityCap] = Field(default_factory=list)
    basis: str = "certificate"


class Finding(Frozen):
    """A fact worth telling, with its code from the design's table and its severity after policy."""

    code: str
    severity: Severity
    message: str
    trigger: Trigger | None = None


#: The order triggers are listed in, wherever several are: an evaluation's `alarm.triggers`, the alarms it decides.
TRIGGER_ORDER: tuple[Trigger, ...] = ("expiry", "security", "chain", "validity", "reachability")
_RAISING_LEVEL: dict[str, Level] = {"critical": "critical", "warning": "warning", "info": "info"}


def level_of(findings: Iterable[Finding]) -> Level:
    """The alarm level of some findings: the most severe above notice (notices never raise an alarm); `ok` when
    there is none. The evaluator's `alarm.level` and each of the alarmer's alarms follow this one rule."""
    worst: Finding | None = None
    for finding in findings:
        if finding.severity != "notice" and (
            worst is None or SEVERITY_ORDER[finding.severity] > SEVERITY_ORDER[worst.severity]
        ):
            worst = finding
    return "ok" if worst is None else _RAISING_LEVEL[worst.severity]


class RevocationInfo(Frozen):
    """What a stapled OCSP response says (`status` none when nothing was stapled)."""

    ocsp_stapled: bool = False
    status: Literal["good", "revoked", "unknown", "stale", "invalid", "none"] = "none"
    produced_at: datetime | None = None
    next_update: datetime | None = None
    revoked_at: datetime | None = None
    reason: str | None = None


class TransparencyInfo(Frozen):
    """Certificate Transparency facts of the leaf."""

    sct_count: int = 0


class AlarmSummary(Frozen):
    """The alarm level of the evaluation: the most severe finding above notice, and its triggers."""

    level: Level
    triggers: list[Trigger] = Field(default_factory=list)


class Evaluation(Frozen):
    """The evaluation object of one target at one time."""

    target: TargetRef
    target_key: str
    address: str | None = None  # the address the target resolved to and was scanned at
    observed_at: datetime
    evaluated_at: datetime
    reachable: bool
    error: ObservationError | None = None
    certificate: CertificateInfo | None = None
    chain: ChainInfo = Field(default_factory=ChainInfo)
    tls: TlsSummary = Field(default_factory=TlsSummary)
    expiry: ExpiryInfo | None = None
    security: SecurityInfo | None = None
    findings: list[Finding] = Field(default_factory=list)
    alarm: AlarmSummary
    revocation: RevocationInfo | None = None
    transparency: TransparencyInfo | None = None
    owner: str | None = None
    critical: bool = False
