"""The evaluator's memos, in one object that the composition root builds and passes in, as it does the trust store.

An estate is evaluated again on every scan and presents the same certificates from many endpoints, so what
depends only on a certificate, a chain, a TLS configuration or a host name is kept: parsed certificates (with
every fact derived from one, `ParsedCert.derived`), issuer names, checked signatures, the verifier's answers,
chain verdicts, TLS judgements, grades, host-name matches and the config's answers. The rules stay pure functions
of their arguments; these tables only change how fast they answer, never what.

Every table is bounded in entries, and those that keep certificates alive in bytes too: a certificate over 16 KiB
is parsed each time it is met rather than kept (`MEMOISED_CERTIFICATE_BYTES`), an issuer name over 1 KiB is
built each time, and a verifier answer or chain verdict is kept only for chains of 16 KiB in all
(`MEMOISED_CHAIN_BYTES`). The threads that evaluate share one object: a `BoundedMemo` takes a lock to evict, and
`functools.lru_cache` is thread-safe. Two objects share nothing.

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
from services.evaluator.domain.memo import BoundedMemo, Identity
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

#: Distinct certificates kept parsed (by DER, and by the base64 text they came in): a large estate's leaves plus
#: every intermediate; at most 128 MB of DER with the 16 KiB bound.
CERTIFICATE_ENTRIES = 8192
#: Distinct issuer names kept, by their encoding (leaves share a few issuers).
ISSUER_NAME_ENTRIES = 8192
#: Link signatures kept checked, by (certificate, issuer key).
SIGNATURE_ENTRIES = 16384
#: Verifier answers and reusable paths above an issuer: about one per distinct presented chain and trust store.
ANSWER_ENTRIES = 8192
#: Chain verdicts: about one per distinct (presented chain, trust store, verifier outcome).
VERDICT_ENTRIES = 8192
#: Distinct TLS configurations kept judged; an estate has a handful (the `expiry` profile: version and suite).
TLS_ENTRIES = 1024
#: Distinct grade inputs: an estate's few TLS configurations times its key sizes and trust faults.
GRADE_ENTRIES = 4096
#: Host names and (pattern, host name) pairs kept matched, and strings kept read as IP addresses or not.
HOSTNAME_ENTRIES = 16384
IP_ENTRIES = 4096
#: Configs whose targets' tags are kept indexed (a process has one, or one per reload).
CONFIG_ENTRIES = 16
#: Resolutions: one per (server, owner, matching rules, address) an estate has, about.
RESOLUTION_ENTRIES = 8192

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

    def __init__(self, *, verifier: Verifier = ask, certificates: int = CERTIFICATE_ENTRIES) -> None:
        self.verifier = verifier
        self.issuer_names: BoundedMemo[bytes, tuple[str, NameKey]] = BoundedMemo(ISSUER_NAME_ENTRIES)
        # The memos hold functions, not this object, so that a dropped `EvaluatorCaches` is freed at once (as a
        # benchmark drops one per evaluation) instead of waiting, with every certificate in it, for the collector.
        self._parse_new = functools.partial(parse_certificate, issuer_names=self.issuer_names)
        self._parsed = functools.lru_cache(maxsize=certificates)(self._parse_new)
        self._decode_new = functools.partial(_decode_and_parse, parsed=self._parsed, parse_new=self._parse_new)
        self._decoded = functools.lru_cache(maxsize=certificates)(self._decode_new)
        self.links: BoundedMemo[tuple[str, bytes], bool | None] = BoundedMemo(SIGNATURE_ENTRIES)
        self.signatures: BoundedMemo[tuple[x509.Certificate, bytes], bool | None] = BoundedMemo(SIGNATURE_ENTRIES)
        self.answers: BoundedMemo[AnswerKey, Memoised] = BoundedMemo(ANSWER_ENTRIES)
        self.tails: BoundedMemo[AnswerKey, Tail] = BoundedMemo(ANSWER_ENTRIES)
        self.verdicts: BoundedMemo[VerdictKey, ChainResult] = BoundedMemo(VERDICT_ENTRIES)
        self.tls_judgements = functools.lru_cache(maxsize=TLS_ENTRIES)(judge_configuration)
        self.grades = functools.lru_cache(maxsize=GRADE_ENTRIES)(graded)
        self.a_labels = functools.lru_cache(maxsize=HOSTNAME_ENTRIES)(to_a_label)
        self.names_match = functools.lru_cache(maxsize=HOSTNAME_ENTRIES)(
            functools.partial(dns_name_matches, a_label=self.a_labels)
        )
        self.ips = functools.lru_cache(maxsize=IP_ENTRIES)(as_ip)
        self.config_tags: BoundedMemo[Identity[CertmonConfig], dict[str, tuple[str, ...]]] = BoundedMemo(CONFIG_ENTRIES)
        self.resolutions: BoundedMemo[ResolutionKey, Resolution] = BoundedMemo(RESOLUTION_ENTRIES)

    def parse(self, der: bytes) -> ParsedCert | str:
        """The certificate (at position 0), or why it does not parse; kept by content when up to 16 KiB."""
        return self._parsed(der) if len(der) <= MEMOISED_CERTIFICATE_BYTES else self._parse_new(der)

    def parse_text(self, text: str) -> ParsedCert | str:
        """`parse` of a base64 DER certificate, kept by the text itself: decoding one seen before is spared."""
        return self._decoded(text) if len(text) <= _MEMOISED_BASE64 else self._decode_new(text)


def _decode_and_parse(
    text: str,
    *,
    parsed: Callable[[bytes], ParsedCert | str],
    parse_new: Callable[[bytes], ParsedCert | str],
) -> ParsedCert | str:
    """`EvaluatorCaches.parse` of the DER in `text`, given its memo (`parsed`) and the parser itself."""
    der = decode_base64(text)
    if isinstance(der, str):
        return der
    return parsed(der) if len(der) <= MEMOISED_CERTIFICATE_BYTES else parse_new(der)
