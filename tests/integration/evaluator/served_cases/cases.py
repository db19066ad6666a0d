"""The zoo's PKI: roots, intermediates, a cross-signed intermediate, a rogue root, and one leaf per case.

Every certificate is generated once per test session with `cryptography` (via `tests.support.pki`); each case
names the chain its server sends, leaf first, and the anchors of the trust store are `root` and `root2` only.
"""

import datetime as dt
import ssl
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from shared.events.target import Profile
from tests.support.pki import NOW, Issued, ec_key, make_ca, make_leaf, rsa_key, write_chain
from tests.support.tls_server import server_context

#: The name every zoo server is asked for (SNI) and every healthy leaf carries.
HOST = "localhost"


@dataclass(frozen=True)
class Pki:
    """The CAs the zoo's leaves are issued by."""

    root: Issued
    intermediate: Issued
    upper: Issued  # intermediate under `root` that issues `lower`: the three-link chain of the order cases
    lower: Issued
    root2: Issued
    cross_root: Issued  # root 1 of the cross-signed path, not trusted
    cross_by_root1: Issued  # intermediate B as signed by root 1...
    cross_by_root2: Issued  # ...and the same subject and key signed by root 2, which is trusted
    rogue_root: Issued
    rogue_intermediate: Issued

    @property
    def anchors(self) -> tuple[Issued, ...]:
        """What the trust store holds."""
        return (self.root, self.root2)


def build_pki() -> Pki:
    """Generate the zoo's certificate authorities."""
    root = make_ca("Zoo Root")
    upper = make_ca("Zoo Upper Intermediate", issuer=root)
    root2 = make_ca("Zoo Root 2")
    cross_root = make_ca("Zoo Cross Root 1")
    cross_key = ec_key()
    rogue_root = make_ca("Zoo Rogue Root")
    return Pki(
        root=root,
        intermediate=make_ca("Zoo Intermediate", issuer=root),
        upper=upper,
        lower=make_ca("Zoo Lower Intermediate", issuer=upper),
        root2=root2,
        cross_root=cross_root,
        cross_by_root1=make_ca("Zoo Cross Intermediate B", issuer=cross_root, key=cross_key),
        cross_by_root2=make_ca("Zoo Cross Intermediate B", issuer=root2, key=cross_key),
        rogue_root=rogue_root,
        rogue_intermediate=make_ca("Zoo Rogue Intermediate", issuer=rogue_root),
    )


@dataclass(frozen=True)
class Case:
    """One zoo case: the chain its server sends (leaf first) and the exact verdict certmon must give."""

    name: str
    chain: Callable[[Pki], tuple[Issued, ...]]
    codes: frozenset[str]
    level: str
    grade: str
    grade_ignoring_trust: str
    legacy: bool = False  # the server needs OpenSSL's security level 0 to load its key (or to speak TLS 1.0)
    needs: str | None = None  # why the case may be impossible here (the test skips with this reason)
    versions: tuple[ssl.TLSVersion, ssl.TLSVersion] | None = None  # (minimum, maximum) served; None: OpenSSL's
    profile: Profile = "expiry"  # `full` for the protocol cases: their grade rests on the enumeration


def _days(n: float) -> dt.datetime:
    return NOW + dt.timedelta(days=n)


def _signed(pki: Pki, **kwargs: object) -> tuple[Issued, ...]:
    """A leaf for HOST under the intermediate, sent with the intermediate."""
    return make_leaf(pki.intermediate, (HOST,), **kwargs), pki.intermediate  # type: ignore[arg-type]


def _p192(pki: Pki) -> tuple[Issued, ...]:
    return make_leaf(pki.intermediate, (HOST,), key=ec_key(ec.SECP192R1())), pki.intermediate


def _cross(pki: Pki) -> tuple[Issued, ...]:
    leaf = make_leaf(pki.cross_by_root1, (HOST,))
    return leaf, pki.cross_by_root1, pki.cross_by_root2


def _three(pki: Pki, *order: str, extra: tuple[Issued, ...] = ()) -> tuple[Issued, ...]:
    leaf = make_leaf(pki.lower, (HOST,))
    by_name = {"lower": pki.lower, "upper": pki.upper, "root": pki.root}
    return (leaf, *(by_name[name] for name in order), *extra)


OK = frozenset[str]()
TLS = ssl.TLSVersion


def _protocol_case(
    name: str, lowest: ssl.TLSVersion, highest: ssl.TLSVersion, codes: frozenset[str], level: str, grade: str
) -> Case:
    """A case that serves the healthy chain on the versions from `lowest` to `highest`, enumerated (profile
    full) so that A+ is within reach; TLS 1.0/1.1 need OpenSSL's security level 0."""
    return Case(
        name,
        lambda p: _signed(p),
        codes,
        level,
        grade,
        grade,
        legacy=lowest < TLS.TLSv1_2,
        versions=(lowest, highest),
        profile="full",
    )


CASES: tuple[Case, ...] = (
    Case("healthy", lambda p: _signed(p), OK, "ok", "A", "A"),
    Case(
        "expired",
        lambda p: _signed(p, not_before=_days(-90), not_after=_days(-1)),
        frozenset({"expiry.expired"}),
        "critical",
        "F",
        "A",
    ),
    Case(
        "not_yet_valid",
        lambda p: _signed(p, not_before=_days(1), not_after=_days(90)),
        frozenset({"expiry.not_yet_valid"}),
        "critical",
        "F",
        "A",
    ),
    Case(
        "expiring_in_5_days",
        lambda p: _signed(p, not_after=_days(5)),
        frozenset({"expiry.within_7_days"}),
        "critical",
        "A",
        "A",
    ),
    Case(
        "expiring_in_20_days",
        lambda p: _signed(p, not_after=_days(20)),
        frozenset({"expiry.within_30_days"}),
        "warning",
        "A",
        "A",
    ),
    Case(
        "expiring_in_60_days",
        lambda p: _signed(p, not_after=_days(60)),
        frozenset({"expiry.within_90_days"}),
        "info",
        "A",
        "A",
    ),
    Case(
        "self_signed",
        lambda p: (make_leaf(None, (HOST,)),),
        frozenset({"chain.self_signed"}),
        "critical",
        "F",
        "A",
    ),
    Case(
        "untrusted_root",
        lambda p: (make_leaf(p.rogue_intermediate, (HOST,)), p.rogue_intermediate, p.rogue_root),
        frozenset({"chain.untrusted_root", "chain.contains_root"}),
        "critical",
        "F",
        "A",
    ),
    Case(
        "incomplete_chain",
        lambda p: _signed(p)[:1],
        frozenset({"chain.incomplete"}),
        "critical",
        "F",  # not completable (no AIA, no known intermediate): untrusted, SSL Labs' "T"; B without that
        "B",
    ),
    Case(
        "wrong_order",
        lambda p: _three(p, "upper", "lower"),
        frozenset({"chain.wrong_order"}),
        "warning",
        "A",
        "A",
    ),
    Case(
        "duplicate_certificate",
        lambda p: (*_signed(p), p.intermediate),
        frozenset({"chain.extra_certificates"}),
        "warning",
        "A",
        "A",
    ),
    Case(
        "extra_certificate",
        lambda p: (*_signed(p), p.rogue_intermediate),
        frozenset({"chain.extra_certificates"}),
        "warning",
        "A",
        "A",
    ),
    Case(
        "root_sent",
        lambda p: _three(p, "lower", "upper", "root"),
        frozenset({"chain.contains_root"}),
        "ok",
        "A",
        "A",
    ),
    Case(
        "cross_signed",
        _cross,
        frozenset({"chain.cross_signed"}),
        "ok",
        "A",
        "A",
    ),
    Case(
        "wrong_host",
        lambda p: (make_leaf(p.intermediate, ("other.example",)), p.intermediate),
        frozenset({"hostname.mismatch"}),
        "critical",
        "F",
        "A",
    ),
    Case(
        "rsa_1024", lambda p: _signed(p, key=rsa_key(1024)), frozenset({"key.weak"}), "critical", "B", "B", legacy=True
    ),
    Case(
        "ec_p192",
        _p192,
        frozenset({"key.weak"}),
        "critical",
        "B",
        "B",
        legacy=True,
        needs="a TLS server presenting a P-192 certificate",
    ),
    Case(
        "no_server_auth_eku",
        lambda p: _signed(p, eku=[ExtendedKeyUsageOID.CLIENT_AUTH]),
        frozenset({"eku.no_server_auth"}),
        "critical",
        "F",
        "A",
    ),
    Case("ca_leaf", lambda p: _signed(p, ca=True), frozenset({"basic_constraints.ca_leaf"}), "critical", "F", "A"),
    Case(
        "lifetime_over_398_days",
        lambda p: _signed(p, not_before=_days(-10), not_after=_days(400)),
        frozenset({"lifetime.too_long"}),
        "ok",
        "A",
        "A",
    ),
    Case("cn_only_without_san", lambda p: _signed(p, san=False), frozenset({"hostname.cn_only"}), "warning", "A", "A"),
    # TLS 1.3 only: 30 + 30 + 36 = 96, neither capped (TLS 1.3 is offered) nor warned (it is not missing): A+.
    _protocol_case("tls13_only", TLS.TLSv1_3, TLS.TLSv1_3, OK, "ok", "A+"),
    _protocol_case("tls12_only", TLS.TLSv1_2, TLS.TLSv1_2, frozenset({"tls.no_tls13"}), "ok", "A-"),  # the warning
    # TLS 1.0/1.1 offered is B; neither TLS 1.2 nor TLS 1.3 is C, the lower.
    _protocol_case(
        "tls11_best", TLS.TLSv1, TLS.TLSv1_1, frozenset({"tls.tls10", "tls.tls11", "tls.no_tls13"}), "warning", "C"
    ),
)


@dataclass(frozen=True)
class Served:
    """A case's chain written for a TLS server: the PEM chain file, its key, and the certificates sent."""

    case: Case
    cert_path: Path
    key_path: Path
    sent: tuple[Issued, ...]


def served_context(served: Served) -> ssl.SSLContext:
    """A server context for the case: its chain and key, and the protocol versions it pins."""
    ctx = server_context(served.cert_path, served.key_path, legacy=served.case.legacy)
    if served.case.versions is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # a TLS 1.0/1.1 server is the point of a case
            ctx.minimum_version, ctx.maximum_version = served.case.versions
    return ctx


def write_cases(pki: Pki, directory: Path) -> dict[str, Served]:
    """Issue each case's leaf and write `<case>.pem` / `<case>.key` into `directory`."""
    served: dict[str, Served] = {}
    for case in CASES:
        sent = case.chain(pki)
        cert_path, key_path = write_chain(directory, case.name, sent[0], *sent[1:])
        served[case.name] = Served(case, cert_path, key_path, sent)
    anchors = directory / "anchors.pem"
    anchors.write_bytes(b"".join(a.pem for a in pki.anchors))
    return served
