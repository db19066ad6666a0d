"""The security grade, SSL Labs style (Rating Guide 2009r as testssl.sh implements it).

score = 30% protocol + 30% key exchange + 40% cipher strength, each category the mean of its best and worst;
a zero anywhere makes the total zero. Caps then lower the letter (the lowest wins), trust problems make it F
(`grade_ignoring_trust` keeps the letter without them), and an A becomes A+ with no warning or A- with one.
What the grade rests on is stated in `basis`: with the `expiry` profile only the negotiated version and suite
are known, so caps that need the full enumeration cannot apply and A+ is not awarded.
"""

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from services.evaluator.domain.protocol import VERSIONS, TlsView
from shared.events.evaluation import Grade, KeyInfo, SecurityCap, SecurityInfo

_RANK: dict[Grade, int] = {"A+": 0, "A": 1, "A-": 2, "B": 3, "C": 4, "D": 5, "E": 6, "F": 7}
_PROTOCOL_SCORES = {"SSLv2": 0, "SSLv3": 80, "TLSv1.0": 90, "TLSv1.1": 95, "TLSv1.2": 100, "TLSv1.3": 100}
#: (upper bound exclusive, score) for RSA/DSA/DH sizes and for EC sizes (testssl's equivalents).
_FF_KEY_SCORES = ((512, 20), (1024, 40), (2048, 80), (4096, 90))
_EC_KEY_SCORES = ((110, 20), (123, 40), (163, 80), (225, 90))

_LETTERS: tuple[tuple[int, Grade], ...] = ((80, "A"), (65, "B"), (50, "C"), (35, "D"), (20, "E"))

BASIS_FULL = "full enumeration of protocols and cipher suites"
BASIS_NEGOTIATED = "certificate and negotiated parameters only (expiry profile)"
BASIS_CERTIFICATE = "certificate only (no TLS handshake)"


class _Cap(NamedTuple):
    grade: Grade
    reason: str


@dataclass(frozen=True)
class GradeInputs:
    """What the grade is computed from."""

    view: TlsView
    key: KeyInfo
    md5_signed: bool = False
    incomplete_chain: bool = False
    trust_problems: list[str] = field(default_factory=list)


def _tiered(bits: int, tiers: tuple[tuple[int, int], ...]) -> int:
    for bound, score in tiers:
        if bits < bound:
            return score
    return 100


def certificate_key_score(key: KeyInfo) -> int | None:
    """The key-exchange score of the certificate's key, or None when its size is unknown."""
    if key.bits is None:
        return None
    if key.type in ("EC", "Ed25519", "Ed448"):
        return _tiered(key.bits, _EC_KEY_SCORES)
    return _tiered(key.bits, _FF_KEY_SCORES)


def key_exchange_score(inputs: GradeInputs) -> int | None:
    """The weaker of the certificate key and a negotiated finite-field DH group (`ffdhe2048`)."""
    scores = [certificate_key_score(inputs.key)]
    group = inputs.view.negotiated.key_exchange_group if inputs.view.negotiated else None
    match = re.fullmatch(r"ffdhe(\d+)", group or "", re.IGNORECASE)
    if match:
        scores.append(_tiered(int(match[1]), _FF_KEY_SCORES))
    known = [s for s in scores if s is not None]
    return min(known) if known else None


def protocol_score(view: TlsView) -> int | None:
    """(best + worst) / 2 over the known versions."""
    if not view.versions:
        return None
    return (_PROTOCOL_SCORES[view.versions[-1]] + _PROTOCOL_SCORES[view.versions[0]]) // 2


def _cipher_bits_score(bits: int) -> int:
    if bits == 0:
        return 0
    return 20 if bits < 128 else 80 if bits < 256 else 100


def cipher_score(view: TlsView) -> int | None:
    """(strongest + weakest) / 2 over the known suites whose strength we know."""
    bits = [s.bits for s in view.all_suites() if s.bits is not None]
    if not bits:
        return None
    return (_cipher_bits_score(max(bits)) + _cipher_bits_score(min(bits))) // 2


def total_score(protocol: int | None, key: int | None, cipher: int | None) -> int:
    """Weighted 30/30/40 with testssl's integer truncation, over the categories that are known."""
    terms = [(w, s) for w, s in ((30, protocol), (30, key), (40, cipher)) if s is not None]
    if not terms or any(s == 0 for _, s in terms):
        return 0
    weights = sum(w for w, _ in terms)
    return sum(w * s // 100 for w, s in terms) * 100 // weights


def letter(score: int) -> Grade:
    """≥80 A, ≥65 B, ≥50 C, ≥35 D, ≥20 E, else F."""
    for bound, grade_letter in _LETTERS:
        if score >= bound:
            return grade_letter
    return "F"


def _at_least(view: TlsView, version: str) -> list[str]:
    return [v for v in view.versions if VERSIONS.index(v) >= VERSIONS.index(version)]


def _protocol_caps(view: TlsView) -> list[_Cap]:
    caps: list[_Cap] = []
    if "SSLv2" in view.versions:
        caps.append(_Cap("F", "SSLv2 is supported"))
    if "SSLv3" in view.versions:
        best_is_v3 = view.best == "SSLv3"
        caps.append(
            _Cap("F" if best_is_v3 else "B", "SSLv3 is the best protocol" if best_is_v3 else "SSLv3 is supported")
        )
    if "TLSv1.0" in view.versions or "TLSv1.1" in view.versions:
        caps.append(_Cap("B", "TLS 1.0 or TLS 1.1 is supported"))
    # testssl's "TLS 1.2 or TLS 1.3 are not offered": the best version says it, enumerated or negotiated (the
    # scanner offers up to TLS 1.3, so the negotiated version is the best the server has). TLS 1.3 alone is no cap.
    best = view.best
    if best is not None and VERSIONS.index(best) < VERSIONS.index("TLSv1.2"):
        caps.append(_Cap("C", "neither TLS 1.2 nor TLS 1.3 is supported"))
    return caps


def _cipher_caps(view: TlsView) -> list[_Cap]:
    caps: list[_Cap] = []
    suites = view.all_suites()
    if any(s.export for s in suites):
        caps.append(_Cap("F", "EXPORT cipher suites are supported"))
    if any(s.null for s in suites):
        caps.append(_Cap("F", "NULL cipher suites are supported"))
    if any(s.anonymous for s in suites):
        caps.append(_Cap("F", "anonymous (unauthenticated) key exchange is supported"))
    if suites and not any(s.forward_secrecy for s in suites):
        caps.append(_Cap("B", "no forward secrecy"))
    modern = _at_least(view, "TLSv1.1")
    modern_suites = [s for v in modern for s in view.suites.get(v, ())]
    if any(s.rc4 for s in modern_suites):
        caps.append(_Cap("C", "RC4 is used with TLS 1.1 or newer"))
    elif any(s.rc4 for s in suites):
        caps.append(_Cap("B", "RC4 is supported"))
    if any(s.block64 for s in modern_suites):
        caps.append(_Cap("C", "3DES or another 64-bit block cipher is used with TLS 1.1 or newer"))
    return caps


def _key_caps(inputs: GradeInputs, key_score: int | None) -> list[_Cap]:
    caps: list[_Cap] = []
    if key_score is not None and key_score <= 40:
        caps.append(_Cap("F", f"key exchange too weak ({inputs.key.type} {inputs.key.bits} bits; RSA < 1024)"))
    elif key_score is not None and key_score <= 80:
        caps.append(_Cap("B", f"key exchange weaker than RSA 2048 ({inputs.key.type} {inputs.key.bits} bits)"))
    if inputs.md5_signed:
        caps.append(_Cap("F", "a certificate is signed with MD5"))
    if inputs.incomplete_chain:
        caps.append(_Cap("B", "the chain is incomplete (an intermediate is missing)"))
    return caps


def _warnings(view: TlsView) -> list[_Cap]:
    warnings: list[_Cap] = []
    if view.known and "TLSv1.3" not in view.versions:
        warnings.append(_Cap("A-", "warning: TLS 1.3 is not supported"))
    if not view.enumerated:
        warnings.append(_Cap("A", "A+ needs the full enumeration of protocols and cipher suites (profile full)"))
    return warnings


def _worst(grades: list[Grade]) -> Grade:
    return max(grades, key=lambda g: _RANK[g])


def grade(inputs: GradeInputs) -> SecurityInfo:
    """The SSL Labs-style rating from what is known, with every cap, warning and trust problem listed."""
    view = inputs.view
    protocol, cipher = protocol_score(view), cipher_score(view)
    key = key_exchange_score(inputs)
    score = total_score(protocol, key, cipher)
    caps = _protocol_caps(view) + _cipher_caps(view) + _key_caps(inputs, key) + _warnings(view)
    from_score = letter(score)
    ignoring_trust = _worst(["A+" if from_score == "A" else from_score, *(c.grade for c in caps)])
    trust_caps = [_Cap("F", f"not trusted: {problem}") for problem in inputs.trust_problems]
    basis = BASIS_FULL if view.enumerated else BASIS_NEGOTIATED if view.known else BASIS_CERTIFICATE
    return SecurityInfo(
        grade="F" if trust_caps else ignoring_trust,
        grade_ignoring_trust=ignoring_trust,
        score=score,
        protocol_score=protocol,
        key_exchange_score=key,
        cipher_score=cipher,
        caps=[SecurityCap(grade=c.grade, reason=c.reason) for c in caps + trust_caps],
        basis=basis,
    )
