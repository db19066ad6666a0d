"""The evaluator's caches change only its speed: a warm evaluation equals a cold one, in any order."""

import datetime as dt
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from services.evaluator.domain import EvaluatorCaches, TrustStore
from services.evaluator.domain.memo import BoundedMemo
from services.evaluator.domain.parse import (
    MEMOISED_CERTIFICATE_BYTES,
    ParsedCert,
    name_key,
    parse_chain,
    parse_der,
    spki_of,
)
from shared.der import element
from shared.events import Observation
from tests.support.pki import NOW, Issued, ec_key, make_ca, make_leaf
from tests.unit.evaluator.crafted_certificates import assemble, outer_parts, tlv
from tests.unit.evaluator.evaluator_support import b64, judge, large_leaf, observation, store


def _cases(intermediate: Issued, rogue_root: Issued) -> list[Observation]:
    healthy = make_leaf(intermediate, ["localhost"])
    expired = make_leaf(
        intermediate, ["localhost"], not_before=NOW - dt.timedelta(days=90), not_after=NOW - dt.timedelta(days=2)
    )
    return [
        observation(healthy, intermediate),
        observation(healthy, intermediate, host="other.example"),  # same chain, different name
        observation(intermediate, healthy),  # same certificates, wrong order
        observation(expired, intermediate),
        observation(make_leaf(None, ["localhost"])),
        observation(make_leaf(rogue_root, ["localhost"]), rogue_root),
        observation(healthy),  # the intermediate missing
    ]


def test_warm_results_equal_cold_results_in_any_order(
    intermediate: Issued, rogue_root: Issued, trust: TrustStore
) -> None:
    """Evaluating after the caches were filled by other chains gives exactly what a cold evaluation gives."""
    cases = _cases(intermediate, rogue_root)
    cold = [judge(obs, trust, caches=EvaluatorCaches()).model_dump(mode="json") for obs in cases]
    caches = EvaluatorCaches()
    warm_forward = [judge(obs, trust, caches=caches).model_dump(mode="json") for obs in cases]
    warm_backward = [judge(obs, trust, caches=caches).model_dump(mode="json") for obs in reversed(cases)][::-1]
    assert warm_forward == cold
    assert warm_backward == cold
    later = NOW + dt.timedelta(days=400)  # the same chains at another time: nothing time-dependent was cached
    assert [judge(o, trust, now=later, caches=caches).alarm.level for o in cases[:1]] == ["critical"]


def test_a_memoised_chain_verdict_follows_the_verifier_as_time_and_trust_change(root: Issued) -> None:
    """The chain verdict is memoised on the chain, the store and the verifier's answer: the same chain judged
    while its intermediate is valid, after it expired, against a store without its root, and again as at first,
    each gets the verdict a cold evaluation gives."""
    short_lived = make_ca(
        "certmon Short-lived Intermediate",
        issuer=root,
        not_before=NOW - dt.timedelta(days=30),
        not_after=NOW + dt.timedelta(days=10),
    )
    leaf = make_leaf(short_lived, ["localhost"], not_after=NOW + dt.timedelta(days=60))
    obs = observation(leaf, short_lived)
    later = NOW + dt.timedelta(days=20)  # the intermediate has expired, the leaf has not
    steps = [(NOW, store(root)), (later, store(root)), (NOW, store(make_ca("Other Root"))), (NOW, store(root))]
    cold = [judge(obs, trust, now=now, caches=EvaluatorCaches()).model_dump(mode="json") for now, trust in steps]
    caches = EvaluatorCaches()
    warm = [judge(obs, trust, now=now, caches=caches).model_dump(mode="json") for now, trust in steps]
    assert warm == cold
    assert [doc["chain"]["trusted"] for doc in warm] == [True, False, False, True]
    assert "chain.intermediate_expiring" in {f["code"] for f in warm[0]["findings"]}


def test_bounded_memo_drops_the_oldest_and_tells_none_from_absent() -> None:
    """At most `size` entries, the oldest insertion dropped first; a remembered None is found as None."""
    memo: BoundedMemo[int, int | None] = BoundedMemo(3)
    for key in range(5):
        memo.put(key, None if key == 4 else key * 10)
    absent = object()
    assert [memo.get(key, absent) for key in range(5)] == [absent, absent, 20, 30, None]
    assert len(memo) == 3


def test_bounded_memo_is_safe_to_fill_from_several_threads() -> None:
    """Threads inserting and evicting at once never break the memo nor let it grow past its size."""
    memo: BoundedMemo[tuple[int, int], int] = BoundedMemo(64)
    errors: list[BaseException] = []

    def fill(worker: int) -> None:
        try:
            for n in range(5000):
                memo.put((worker, n), n)
                memo.get((worker, n - 1), None)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fill, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert len(memo) <= 64


def test_links_on_the_verified_path_are_not_checked_twice(intermediate: Issued, trust: TrustStore) -> None:
    """When the verifier builds a path, the chain walk takes its links' signatures as checked (a new leaf costs
    one verification, not two); a link the verifier did not vouch for is still checked by certmon itself (every
    link certmon checks is kept in `caches.links`, by the certificate's fingerprint)."""
    caches = EvaluatorCaches()
    trusted = judge(
        observation(make_leaf(intermediate, ["localhost"], cn="fresh leaf"), intermediate), trust, caches=caches
    )
    assert trusted.chain.trusted and len(caches.links) == 0
    rogue = make_ca("certmon Rogue Intermediate")
    rogue_leaf = make_leaf(rogue, ["localhost"], cn="rogue leaf")
    untrusted = judge(observation(rogue_leaf, rogue), trust, caches=caches)
    assert not untrusted.chain.trusted
    checked = (rogue_leaf.cert.fingerprint(hashes.SHA256()).hex(), spki_of(rogue.cert.public_key()))
    assert len(caches.links) == 1 and caches.links.get(checked, None) is True


def _issued_under(issuer: x509.Name) -> bytes:
    key = ec_key()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf.example")]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("leaf.example")]), critical=False)
        .sign(key, hashes.SHA256())
        .public_bytes(Encoding.DER)
    )


def _bounds(der: bytes, at: int) -> tuple[int, int]:
    bounds = element(der, at)
    assert bounds is not None
    return bounds


def _version_1(der: bytes) -> bytes:
    """The same certificate as version 1: no version field, no extensions (parsing does not check the
    signature, which no longer matches)."""
    tbs, algorithm = outer_parts(der)
    at = _bounds(tbs, 0)[0]
    kept = b""
    while at < len(tbs):
        end = _bounds(tbs, at)[1]
        if tbs[at] not in (0xA0, 0xA3):  # [0] version, [3] extensions
            kept += tbs[at:end]
        at = end
    return assemble(tlv(0x30, kept), algorithm, b"\x00" * 70)


def test_an_issuer_name_found_by_its_encoding_is_the_one_cryptography_builds() -> None:
    """The issuer's string and key are memoised by the name's bytes, cut from the certificate's DER: for short
    and long (long-form length) names, a name too large to be kept, a multi-valued RDN, escaped characters, one
    string in two encodings, and version 1 certificates (no version field), the first and the memoised readings
    equal what `cryptography` gives."""
    cn, org = NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME
    names = [
        x509.Name([x509.NameAttribute(cn, "Short CA")]),
        x509.Name([x509.NameAttribute(cn, "Other CA")]),  # as long: only the bytes tell them apart
        x509.Name([x509.NameAttribute(org, "o" * 150), x509.NameAttribute(cn, "Long CA")]),
        x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "u" * 60) for _ in range(20)]),  # not kept
        x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(cn, "Multi"), x509.NameAttribute(org, "V")])]),
        x509.Name([x509.NameAttribute(cn, "a,b+c=d \\ e")]),
        x509.Name([x509.NameAttribute(cn, "Same", _ASN1Type.PrintableString)]),
        x509.Name([x509.NameAttribute(cn, "Same", _ASN1Type.UTF8String)]),
    ]
    caches = EvaluatorCaches()
    for _ in range(2):  # new certificates each round: names built first, then found by their encoding
        issued = [_issued_under(name) for name in names]
        issued += [_version_1(der) for der in issued]
        assert x509.load_der_x509_certificate(issued[-1]).version == x509.Version.v1
        for der in issued:
            parsed = parse_der(der, 0, caches)
            cert = x509.load_der_x509_certificate(der)
            assert isinstance(parsed, ParsedCert)
            assert (parsed.issuer, parsed.issuer_key) == (cert.issuer.rfc4514_string(), name_key(cert.issuer))


def test_only_certificates_up_to_16_kib_are_kept_parsed(intermediate: Issued) -> None:
    """The parse memo holds at most 8,192 certificates of 16 KiB: a larger one is parsed again each time it is met,
    to the same fields."""
    large = large_leaf(intermediate)
    assert len(large.der) > MEMOISED_CERTIFICATE_BYTES
    small = make_leaf(intermediate, ["localhost"])
    caches = EvaluatorCaches()
    first, second = parse_chain([b64(large), b64(small)], caches), parse_chain([b64(large), b64(small)], caches)
    (large_1, small_1), (large_2, small_2) = first[0], second[0]
    assert large_1.cert is not large_2.cert and large_1.fingerprint == large_2.fingerprint
    names = large.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert large_1.dns == large_2.dns == tuple(names.get_values_for_type(x509.DNSName))
    assert large_1.size == len(large.der)
    assert small_1.cert is small_2.cert
