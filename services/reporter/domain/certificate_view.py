"""What a certificate's page shows beyond its evaluation: its chain as presented and as verified, and who owns
it by which rule (pure).

The evaluation carries every certificate the server presented (subject, issuer, validity, key and signature; only
subject, issuer and notAfter in evaluations older than those fields) and the fingerprints of the verified path: the
chain shows what is known of each and says where each certificate of the verified path came from.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.reporter.domain.views import AlarmView
from shared.events import Evaluation, OwnerRef
from shared.events.evaluation import CertificateInfo, KeyInfo, PresentedCertificate

#: Where a certificate of the verified path came from: sent by the server, the intermediates certmon had seen,
#: fetched from the issuer's AIA address, the trust store (the anchor), or not recorded.
Source = Literal["presented", "cache", "aia", "trust store", "unknown"]


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One certificate of a chain, with what the evaluation says of it."""

    fingerprint: str
    subject: str | None
    issuer: str | None
    not_before: datetime | None
    not_after: datetime | None
    key: str | None
    signature_algorithm: str | None
    source: Source
    leaf: bool


@dataclass(frozen=True, slots=True)
class ChainView:
    """The chain as the server presented it and as certmon verified it, with the chain's verdicts."""

    presented: tuple[ChainLink, ...]
    verified: tuple[ChainLink, ...]
    complete: bool
    trusted: bool
    ordered: bool
    contains_root: bool
    cross_signed: bool


def describe_key(key: KeyInfo) -> str:
    """A key as people name it: `RSA 2048 bits`, `EC 256 bits (secp256r1)`, `Ed25519`."""
    text = key.type if key.bits is None else f"{key.type} {key.bits} bits"
    return f"{text} ({key.curve})" if key.curve else text


def _link(
    presented: PresentedCertificate | None, fingerprint: str, leaf: CertificateInfo | None, source: Source
) -> ChainLink:
    is_leaf = leaf is not None and leaf.fingerprint_sha256 == fingerprint
    if is_leaf and leaf is not None:
        return ChainLink(
            fingerprint=fingerprint,
            subject=leaf.subject,
            issuer=leaf.issuer,
            not_before=leaf.not_before,
            not_after=leaf.not_after,
            key=describe_key(leaf.key),
            signature_algorithm=leaf.signature_algorithm,
            source=source,
            leaf=True,
        )
    return ChainLink(
        fingerprint=fingerprint,
        subject=presented.subject if presented else None,
        issuer=presented.issuer if presented else None,
        not_before=presented.not_before if presented else None,
        not_after=presented.not_after if presented else None,
        key=describe_key(presented.key) if presented and presented.key else None,
        signature_algorithm=presented.signature_algorithm if presented else None,
        source=source,
        leaf=False,
    )


def chain_view(evaluation: Evaluation) -> ChainView:
    """The chain of one evaluation."""
    chain, leaf = evaluation.chain, evaluation.certificate
    sent = {c.fingerprint_sha256: c for c in chain.presented}
    path = chain.verified_path

    def source_of(position: int, fingerprint: str) -> Source:
        if fingerprint in sent:
            return "presented"
        if position == len(path) - 1 and chain.trusted:
            return "trust store"
        return chain.completed_from or "unknown"

    return ChainView(
        presented=tuple(_link(c, c.fingerprint_sha256, leaf, "presented") for c in chain.presented),
        verified=tuple(_link(sent.get(f), f, leaf, source_of(n, f)) for n, f in enumerate(path)),
        complete=chain.complete,
        trusted=chain.trusted,
        ordered=chain.ordered,
        contains_root=chain.contains_root,
        cross_signed=chain.cross_signed,
    )


def owners_of(alarms: Sequence[AlarmView]) -> list[OwnerRef]:
    """The owners the certificate's alarms named, each with the rule that chose it, once per (owner, rule); the
    most recently active alarm's first."""
    seen: dict[tuple[str, str], OwnerRef] = {}
    for alarm in sorted(alarms, key=lambda a: a.updated_at, reverse=True):
        for owner in alarm.owners:
            seen.setdefault((owner.name, owner.rule), owner)
    return list(seen.values())
