"""Protocol facts as judged: which versions and suites are known, and the `tls.*` / `cipher.*` findings.

With the `full` profile the scanner enumerates every version and suite (`TlsFacts.enumerated`). With the
`expiry` profile only the negotiated version and suite are known; since the scanner offers up to TLS 1.3, the
negotiated version is the best the server supports, and nothing is known about older versions.
"""

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.evaluator.domain.ciphers import SuiteTraits, classify
from services.evaluator.domain.codes import finding
from shared.events.evaluation import Finding, TlsSummary
from shared.events.observation import NegotiatedTls, TlsFacts

if TYPE_CHECKING:
    from services.evaluator.domain.caches import EvaluatorCaches

VERSIONS = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
#: Deprecated versions: their finding code and the RFC that retired them.
_OLD_VERSIONS = {
    "SSLv2": ("tls.sslv2", "RFC 6176"),
    "SSLv3": ("tls.sslv3", "RFC 7568"),
    "TLSv1.0": ("tls.tls10", "RFC 8996"),
    "TLSv1.1": ("tls.tls11", "RFC 8996"),
}


@functools.lru_cache(maxsize=256)  # a pure function of a few distinct names
def normalise_version(name: str) -> str | None:
    """`TLSv1` / `TLS 1.0` / `tlsv1.0` → `TLSv1.0`; None for a name we do not know."""
    match = re.fullmatch(r"\s*(SSL|TLS)\s*v?\s*(\d)(?:\.(\d))?\s*", name, re.IGNORECASE)
    if not match:
        return None
    family, major, minor = match[1].upper(), match[2], match[3]
    candidate = f"SSLv{major}" if family == "SSL" else f"TLSv{major}.{minor or 0}"
    return candidate if candidate in VERSIONS else None


@dataclass(frozen=True)
class TlsView:
    """The versions and suites we know about, and whether they are the full enumeration."""

    enumerated: bool
    versions: tuple[str, ...]
    suites: dict[str, tuple[SuiteTraits, ...]]
    negotiated: NegotiatedTls | None

    @property
    def known(self) -> bool:
        """Whether any protocol fact is known (a certificate file has none)."""
        return bool(self.versions)

    @property
    def best(self) -> str | None:
        """The newest version known to be supported."""
        return self.versions[-1] if self.versions else None

    def all_suites(self) -> list[SuiteTraits]:
        """Every known suite, across versions."""
        return [suite for suites in self.suites.values() for suite in suites]


#: What `tls_view` reads of the facts, hashable: (enumerated, versions, suites per version, negotiated).
TlsKey = tuple[bool, tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...], NegotiatedTls | None]


def _tls_key(facts: TlsFacts) -> TlsKey:
    if not facts.enumerated:  # only `negotiated` is read
        return False, (), (), facts.negotiated
    suites = tuple((version, tuple(names)) for version, names in facts.cipher_suites.items())
    return True, tuple(facts.versions), suites, facts.negotiated


def tls_view(facts: TlsFacts) -> TlsView:
    """What the observation's TLS facts tell, normalised."""
    return _view(_tls_key(facts))


def _view(key: TlsKey) -> TlsView:
    enumerated, listed_versions, listed_suites, negotiated = key
    if enumerated:
        raw_versions = list(listed_versions)
        raw_suites = dict(listed_suites)
    elif negotiated is not None:
        raw_versions = [negotiated.version]
        raw_suites = {negotiated.version: (negotiated.cipher_suite,)}
    else:
        raw_versions, raw_suites = [], {}
    versions = {v for v in (normalise_version(name) for name in raw_versions) if v is not None}
    suites: dict[str, tuple[SuiteTraits, ...]] = {}
    for name, listed in raw_suites.items():
        version = normalise_version(name)
        if version is not None:
            versions.add(version)
            # A suite whose strength we cannot read (`unknown` from the handshake library) says nothing.
            suites[version] = tuple(t for t in (classify(suite) for suite in listed) if t.bits is not None)
    ordered = tuple(v for v in VERSIONS if v in versions)
    return TlsView(enumerated=enumerated, versions=ordered, suites=suites, negotiated=negotiated)


@dataclass(frozen=True, eq=False)
class TlsJudgement:
    """The view of one TLS configuration, its `tls` section and its findings (one object per configuration
    while it is kept: compared by identity, so it can key further memos)."""

    view: TlsView
    summary: TlsSummary
    findings: tuple[Finding, ...]


def judge_tls(facts: TlsFacts, caches: "EvaluatorCaches") -> TlsJudgement:
    """`tls_view`, `tls_summary` and `check_protocols` of these facts, kept in `caches` by what they read."""
    return caches.tls_judgements(_tls_key(facts))


def judge_configuration(key: TlsKey) -> TlsJudgement:
    """`judge_tls` of the facts with this key, judged afresh."""
    view = _view(key)
    return TlsJudgement(view=view, summary=tls_summary(view), findings=tuple(check_protocols(view)))


def tls_summary(view: TlsView) -> TlsSummary:
    """The `tls` section of the evaluation."""
    suites = view.all_suites()
    return TlsSummary(
        versions=list(view.versions),
        cipher_suites={version: [s.name for s in listed] for version, listed in view.suites.items()},
        forward_secrecy=any(s.forward_secrecy for s in suites) if suites else None,
        negotiated=view.negotiated,
    )


def check_protocols(view: TlsView) -> list[Finding]:
    """Old versions, weak suites, no forward secrecy, no TLS 1.3."""
    if not view.known:
        return []
    how = "offered" if view.enumerated else "negotiated"
    findings = [
        finding(_OLD_VERSIONS[v][0], f"{v} is {how}; it is deprecated ({_OLD_VERSIONS[v][1]})")
        for v in view.versions
        if v in _OLD_VERSIONS
    ]
    suites = view.all_suites()
    weak = sorted({s.name for s in suites if s.weak})
    if weak:
        findings.append(finding("cipher.weak", f"weak cipher suites {how}: {', '.join(weak)}"))
    if suites and not any(s.forward_secrecy for s in suites):
        detail = "no suite offered" if view.enumerated else "the negotiated suite does not"
        findings.append(finding("cipher.no_forward_secrecy", f"{detail} provides forward secrecy (ECDHE or DHE)"))
    if "TLSv1.3" not in view.versions:
        basis = "is not offered" if view.enumerated else f"was not negotiated (the server chose {view.best})"
        findings.append(finding("tls.no_tls13", f"TLS 1.3 {basis}"))
    return findings
