"""The evaluator's memos, in one object that the composition root builds and passes in, as it does the trust store.

An estate is evaluated again on every scan and presents the same certificates from many endpoints, so what
depends only on a certificate, a chain, a TLS configuration or a host name is kept: parsed certificates (with
every fact derived from one, `ParsedCert.derived`), issuer names, checked signatures, the verifier's answers,
chain verdicts, TLS judgements, grades, host-name matches and the config's answers. The rules stay pure functions
of their arguments; these tables only change how fast they answer, never what.

Every table is bounded in entries, and those that keep certificates alive in bytes too: a certificate over 16 KiB
is parsed each time it is met rather than kept (`MEMOISED_CERTIFICATE_BYTES`), the leaves kept are bounded in the
length of their base64 or DER as well (`LEAF_KEY_LENGTH`), an issuer name over 1 KiB is built each time, and a
verifier answer or chain verdict is kept only for chains of 16 KiB in all (`MEMOISED_CHAIN_BYTES`).

The bounds follow from what a table can hit when an estate is larger than it. A scan meets each target once per
interval, so a table of leaves (or of anything one endpoint alone has: its host name, its address) smaller than
the estate meets every leaf again only after it has been dropped: it helps an estate whose leaves fit, and leaves
served by many endpoints, and is otherwise memory. Those tables are small. What many leaves share is kept apart
and wider: the certificates sent to vouch for a leaf (`authorities`, never crowded out by leaves), issuer names,
the verified paths above an issuer (`tails`), TLS judgements and grades. A verifier answer, a chain verdict and a
checked signature are keyed by a leaf's parsed object, so they are bounded as the leaves are. The figures (bytes
per entry, RSS, evaluations per second) are in `benchmarks/README.md`, section `evaluator_memory`.

The threads that evaluate share one object: a `BoundedMemo` takes a lock to evict, a `LengthBoundedMemo` to
insert, and `functools.lru_cache` is thread-safe. Two objects share nothing.

The verifier is a parameter, as `cryptography`'s verifier takes its store and time: `verifier.ask` unless told
otherwise (tests count its questions by passing one that records them).
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.x509.verification import Store

from services.evaluator.domain.chain import ChainResult, VerdictKey
from services.evaluator.domain.evaluate import graded
from services.evaluator.domain.hostname import as_ip, dns_name_matches, to_a_label
from services.evaluator.domain.memo import BoundedMemo, Identity, LengthBoundedMemo
from services.evaluator.domain.parse import (
    MEMOISED_CERTIFICATE_BYTES,
    NameKey,
    ParsedCert,
    decode_base64,
    parse_certificate,
)
from services.evaluator.domain.protocol import judge_configuration
from services.evaluator.domain.verifier import Answer, AnswerKey, Memoised, Tail, ask
from shared.config import CertmonConfig, Policy

#: Certificates a server sent to vouch for its leaf (position 1 onwards: intermediates, roots sent along) kept
#: parsed: shared by every chain under them, an estate has hundreds at most.
AUTHORITY_ENTRIES = 1024
#: Other certificates kept parsed (leaves, and what does not parse): a leaf is met once per scan of its target,
#: so beyond an estate's repeated leaves this table only helps within a scan, and it holds the most per entry.
LEAF_ENTRIES = 2048
#: And at most this much base64 or DER among them (about 4 KiB each when full: a 3 KiB leaf as base64).
LEAF_KEY_LENGTH = 8 * 1024 * 1024
#: Distinct issuer names kept, by their encoding (leaves share a few issuers; a self-signed leaf has its own).
ISSUER_NAME_ENTRIES = 4096
#: Link signatures kept checked, by (certificate fingerprint, issuer key): links not on a verified path.
LINK_ENTRIES = 4096
#: Signatures kept checked by (certificate, issuer key), which keeps the certificate alive: a stapled OCSP
#: response adds one per leaf, so no more than the leaves kept.
SIGNATURE_ENTRIES = LEAF_ENTRIES
#: Verifier answers and chain verdicts: one per distinct presented chain and trust store. Both are keyed by the
#: leaf's parsed object, so one outliving the leaf's entry can never be found again: no more than the leaves.
ANSWER_ENTRIES = LEAF_ENTRIES
VERDICT_ENTRIES = LEAF_ENTRIES
#: Reusable paths above an issuer: one per distinct (intermediates sent, trust store).
TAIL_ENTRIES = 1024
#: Distinct TLS configurations kept judged; an estate has a handful (the `expiry` profile: version and suite).
TLS_ENTRIES = 1024
#: Distinct grade inputs: an estate's few TLS configurations times its key sizes and trust faults.
GRADE_ENTRIES = 4096
#: Host names and (pattern, host name) pairs kept matched, and strings kept read as IP addresses or not: one per
#: endpoint, met once per scan like a leaf.
HOSTNAME_ENTRIES = 4096
IP_ENTRIES = 1024
#: Configs whose targets' tags are kept indexed: the one in force, and the one before a reload (each index, and
#: the config it keeps alive, grows with the number of targets).
CONFIG_ENTRIES = 2
#: Resolutions: one per (server, owner, matching rules, address) an estate has, about.
RESOLUTION_ENTRIES = 2048


@dataclass(frozen=True)
class CacheBounds:
    """The entry (and length) bounds of one `EvaluatorCaches`; the defaults are the module's constants."""

    authorities: int = AUTHORITY_ENTRIES
    leaves: int = LEAF_ENTRIES
    leaf_key_length: int = LEAF_KEY_LENGTH
    issuer_names: int = ISSUER_NAME_ENTRIES
    links: int = LINK_ENTRIES
    signatures: int = SIGNATURE_ENTRIES
    answers: int = ANSWER_ENTRIES
    verdicts: int = VERDICT_ENTRIES
    tails: int = TAIL_ENTRIES
    tls: int = TLS_ENTRIES
    grades: int = GRADE_ENTRIES
    hostnames: int = HOSTNAME_ENTRIES
    ips: int = IP_ENTRIES
    configs: int = CONFIG_ENTRIES
    resolutions: int = RESOLUTION_ENTRIES


_MEMOISED_BASE64 = (MEMOISED_CERTIFICATE_BYTES + 2) // 3 * 4

#: Asks the path verifier: (leaf, intermediates in order, validation time, store) → (path or None, reason).
Verifier = Callable[[ParsedCert, list[x509.Certificate], datetime, Store], Answer]


@dataclass(frozen=True)
class Resolution:
    """What the config says about one target, certificate and address."""

    policy: Policy
    server: str | None
    owner: str | None


#: What a resolution depends on besides the config: the target's server, owner and (with an owner) key, the
#: indexes of the certificate rules that match, and the address.
ResolutionKey = tuple[Identity[CertmonConfig], str | None, str | None, str | None, tuple[int, ...], str | None]


class EvaluatorCaches:
    """Every memo of one evaluator (a service process, or one `certmon check` run), bounded; see the module."""

    def __init__(self, *, verifier: Verifier = ask, bounds: CacheBounds = CacheBounds()) -> None:
        self.verifier = verifier
        self.bounds = bounds
        self.issuer_names: BoundedMemo[bytes, tuple[str, NameKey]] = BoundedMemo(bounds.issuer_names)
        self._parse_new = functools.partial(parse_certificate, issuer_names=self.issuer_names)
        # Keyed by what the certificate came as (base64 text from an observation, DER from a test or a tool):
        # only one of the two for a certificate that comes one way.
        self.authorities: BoundedMemo[bytes | str, ParsedCert] = BoundedMemo(bounds.authorities)
        self.leaves: LengthBoundedMemo[bytes | str, ParsedCert | str] = LengthBoundedMemo(
            bounds.leaves, bounds.leaf_key_length
        )
        self.links: BoundedMemo[tuple[str, bytes], bool | None] = BoundedMemo(bounds.links)
        self.signatures: BoundedMemo[tuple[x509.Certificate, bytes], bool | None] = BoundedMemo(bounds.signatures)
        self.answers: BoundedMemo[AnswerKey, Memoised] = BoundedMemo(bounds.answers)
        self.tails: BoundedMemo[AnswerKey, Tail] = BoundedMemo(bounds.tails)
        self.verdicts: BoundedMemo[VerdictKey, ChainResult] = BoundedMemo(bounds.verdicts)
        self.tls_judgements = functools.lru_cache(maxsize=bounds.tls)(judge_configuration)
        self.grades = functools.lru_cache(maxsize=bounds.grades)(graded)
        self.a_labels = functools.lru_cache(maxsize=bounds.hostnames)(to_a_label)
        self.names_match = functools.lru_cache(maxsize=bounds.hostnames)(
            functools.partial(dns_name_matches, a_label=self.a_labels)
        )
        self.ips = functools.lru_cache(maxsize=bounds.ips)(as_ip)
        self.config_tags: BoundedMemo[Identity[CertmonConfig], dict[str, tuple[str, ...]]] = BoundedMemo(bounds.configs)
        self.resolutions: BoundedMemo[ResolutionKey, Resolution] = BoundedMemo(bounds.resolutions)

    def parse(self, der: bytes, position: int = 0) -> ParsedCert | str:
        """The certificate (at position 0), or why it does not parse; kept by content when up to 16 KiB, with the
        authorities when it was presented at `position` 1 or more, else with the leaves."""
        found = self._kept(der, position)
        if found is None:
            found = self._parse_new(der)
            if len(der) <= MEMOISED_CERTIFICATE_BYTES:
                self._keep(der, found, position)
        return found

    def parse_text(self, text: str, position: int = 0) -> ParsedCert | str:
        """`parse` of a base64 DER certificate, kept by the text itself: decoding one seen before is spared."""
        found = self._kept(text, position)
        if found is None:
            der = decode_base64(text)
            found = der if isinstance(der, str) else self._parse_new(der)
            if len(text) <= _MEMOISED_BASE64:
                self._keep(text, found, position)
        return found

    def _kept(self, key: bytes | str, position: int) -> ParsedCert | str | None:
        """The certificate kept by `key`, looked for first where one met at `position` is kept."""
        if position:
            return self.authorities.get(key, None) or self.leaves.get(key, None)
        return self.leaves.get(key, None) or self.authorities.get(key, None)

    def _keep(self, key: bytes | str, result: ParsedCert | str, position: int) -> None:
        if position and isinstance(result, ParsedCert):
            self.authorities.put(key, result)
        else:
            self.leaves.put(key, result)
