"""DER under hostile input (issue 18), beyond tests/unit/evaluator/test_evaluator_fuzz.py (random bytes, a few
bytes overwritten, truncation):

- `shared.der.element` on any bytes at any offset: None or bounds inside what it read, never an exception, and the
  bounds of every well-formed header;
- the evaluator on certificates damaged where DER is fragile: an element's declared length changed (shorter,
  longer, in long form), bytes inserted into or cut out of an element, elements swapped: always an evaluation
  that survives its own contract, and a certificate that no longer parses is a `certificate.malformed` finding;
- the scanner's certificate-file reader on random and damaged PEM, DER and PKCS#12: the certificates, or
  `ProbeFailure(kind="file")`, nothing else.
"""

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, pkcs12
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.evaluator.domain import TrustStore
from services.scanner.probes.errors import ProbeFailure
from services.scanner.probes.files.formats import certificates_in
from shared.der import element
from shared.events import Evaluation, Observation, Target
from tests.support.pki import Issued, make_ca, make_leaf
from tests.unit.evaluator.evaluator_support import judge, store

#: Bounded so the file runs in seconds; no example database, so nothing is written into the checkout.
FUZZ = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

ROOT = make_ca("certmon Fuzz Root")
INTERMEDIATE = make_ca("certmon Fuzz Intermediate", issuer=ROOT)
LEAF = make_leaf(INTERMEDIATE, ("localhost",))
TRUST: TrustStore = store(ROOT)


def _headers(der: bytes) -> list[int]:
    """The offset of every element of `der` that is constructed or primitive, depth first: where lengths are."""
    found, pending = [], [(0, len(der))]
    while pending:
        at, end = pending.pop()
        while at < end and (bounds := element(der, at)) is not None and bounds[1] <= end:
            found.append(at)
            if der[at] & 0x20:  # constructed: its content is elements too
                pending.append(bounds)
            at = bounds[1]
    return found


def _length(n: int) -> bytes:
    """A DER length field for `n`."""
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


@st.composite
def damaged(draw: st.DrawFn, der: bytes) -> bytes:
    """`der` with one element's header or content damaged the ways parsers get wrong."""
    at = draw(st.sampled_from(_headers(der)))
    start, end = element(der, at) or (at + 2, at + 2)
    content = der[start:end]
    kind = draw(st.sampled_from(["length", "long-form", "insert", "cut", "swap", "tag"]))
    if kind == "length":  # the declared length off by a little or a lot, the content as it was
        declared = max(0, len(content) + draw(st.integers(-len(content) - 1, 300)))
        return der[: at + 1] + _length(declared) + content + der[end:]
    if kind == "long-form":  # the same length in long form with too many bytes (BER, never DER)
        width = draw(st.integers(max(1, (len(content).bit_length() + 7) // 8), 4))
        return der[: at + 1] + bytes([0x80 | width]) + len(content).to_bytes(width, "big") + content + der[end:]
    if kind == "insert":
        where = draw(st.integers(start, end))
        return der[:where] + draw(st.binary(min_size=1, max_size=8)) + der[where:]
    if kind == "cut":
        where = draw(st.integers(start, max(start, end - 1)))
        return der[:where] + der[where + draw(st.integers(1, 8)) :]
    if kind == "swap":  # this element and the one after it, exchanged
        after = element(der, end)
        if after is None or after[1] > len(der):
            return der
        return der[:at] + der[end : after[1]] + der[at:end] + der[after[1] :]
    return der[:at] + bytes([draw(st.integers(0, 255))]) + der[at + 1 :]


def _parses(der: bytes) -> bool:
    try:
        x509.load_der_x509_certificate(der)
    except ValueError:
        return False
    return True


def _judged(*chain: bytes) -> Evaluation:
    observation = Observation(
        target=Target(host="localhost", port=443),
        observed_at=LEAF.cert.not_valid_before_utc,
        chain=[base64.b64encode(der).decode() for der in chain],
    )
    evaluation = judge(observation, TRUST)
    assert Evaluation.model_validate_json(evaluation.model_dump_json()) == evaluation
    return evaluation


@FUZZ
@given(data=st.binary(max_size=64), at=st.integers(min_value=0, max_value=80))
def test_element_reads_any_bytes_at_any_offset(data: bytes, at: int) -> None:
    """None, or a content start right after a header it had the bytes of, and an end not before the start."""
    bounds = element(data, at)
    if bounds is not None:
        start, end = bounds
        assert at + 2 <= start <= len(data) and end >= start


@FUZZ
@given(tag=st.integers(0, 255), length=st.integers(0, 2**32 - 1), tail=st.binary(max_size=8))
def test_element_reads_every_well_formed_header(tag: int, length: int, tail: bytes) -> None:
    """Any tag and any length up to 4 GiB, in its shortest form: the content starts after the header, ends as
    declared (whether or not the bytes are there)."""
    header = bytes([tag]) + _length(length)
    assert element(header + tail) == (len(header), len(header) + length)


@FUZZ
@given(data=st.data(), which=st.sampled_from(["leaf", "intermediate"]))
def test_the_evaluator_judges_structurally_damaged_certificates(data: st.DataObject, which: str) -> None:
    """A damaged leaf or intermediate is judged without an exception; one that no longer parses is reported."""
    chain = {"leaf": LEAF.der, "intermediate": INTERMEDIATE.der}
    chain[which] = data.draw(damaged(chain[which]))
    evaluation = _judged(chain["leaf"], chain["intermediate"])
    if not _parses(chain[which]):
        assert "certificate.malformed" in {f.code for f in evaluation.findings}


def _pfx(leaf: Issued, *more: Issued) -> bytes:
    """A password-less PKCS#12 of `leaf` (its key an EC key, as the test PKI makes) and `more`."""
    assert isinstance(leaf.key, ec.EllipticCurvePrivateKey)
    return pkcs12.serialize_key_and_certificates(b"fuzz", leaf.key, leaf.cert, [m.cert for m in more], NoEncryption())


FILES = {
    "pem": LEAF.cert.public_bytes(Encoding.PEM) + INTERMEDIATE.cert.public_bytes(Encoding.PEM),
    "der": LEAF.der,
    "pfx": _pfx(LEAF, INTERMEDIATE),
}


def _read(data: bytes) -> list[str] | None:
    """The file's certificates, or None for the one refusal the reader may give."""
    try:
        chain = certificates_in(data, "fuzz.crt")
    except ProbeFailure as refused:
        assert refused.error.kind == "file"
        return None
    for entry in chain:  # each entry is base64, as an observation's chain holds it (a block may decode to nothing)
        base64.b64decode(entry, validate=True)
    return chain


@pytest.mark.parametrize("kind", sorted(FILES))
def test_the_file_reader_reads_each_kind_it_knows(kind: str) -> None:
    """The undamaged files (the baseline of the damage below): the leaf first."""
    chain = _read(FILES[kind])
    assert chain is not None and base64.b64decode(chain[0]) == LEAF.der


@FUZZ
@given(data=st.binary(max_size=2048))
def test_the_file_reader_refuses_random_bytes_cleanly(data: bytes) -> None:
    """Random bytes, with or without a PEM marker or a SEQUENCE in front."""
    for candidate in (data, b"\x30" + data, b"-----BEGIN CERTIFICATE-----\n" + data + b"\n-----END CERTIFICATE-----"):
        _read(candidate)


# cryptography warns when it falls back to BER for a damaged PKCS#12 (it may raise ValueError instead one day,
# which the reader refuses cleanly); a warning is not the reader failing.
@pytest.mark.filterwarnings("ignore:PKCS#12 bundle could not be parsed as DER:UserWarning")
@FUZZ
@given(data=st.data(), kind=st.sampled_from(["der", "pfx"]))
def test_the_file_reader_reads_damaged_der_and_pkcs12_cleanly(data: st.DataObject, kind: str) -> None:
    """A DER certificate or a PKCS#12 file with one element damaged: its certificates, or a refusal."""
    _read(data.draw(damaged(FILES[kind])))


@FUZZ
@given(position=st.integers(min_value=0), value=st.integers(0, 255), count=st.integers(1, 8))
def test_the_file_reader_reads_damaged_pem_cleanly(position: int, value: int, count: int) -> None:
    """A PEM file with bytes overwritten (in its markers, its base64 or between its blocks)."""
    pem = bytearray(FILES["pem"])
    for i in range(count):
        pem[(position + i * 61) % len(pem)] = (value + i * 7) % 256
    _read(bytes(pem))
