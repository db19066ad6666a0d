"""The certificates inside the bytes of a certificate file: PEM, DER or password-less PKCS#12.

The scanner records what the file holds and does not judge it: a PEM block whose base64 decodes is passed on
even if it is not a well-formed certificate (the evaluator turns that into a finding). Anything that is none
of these raises `ProbeFailure(kind="file")`.
"""

import base64
import binascii
import functools
import re

from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from services.scanner.probes.errors import ProbeFailure
from shared.der import element

# A block is a BEGIN marker, then everything up to the first END marker after it. Searched for one marker at a
# time: one pattern `BEGIN(.*?)END` tries the END marker at every byte of the body, ten times slower.
_PEM_BEGIN = re.compile(rb"-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----")
_PEM_END = re.compile(rb"-----END (?:X509 |TRUSTED )?CERTIFICATE-----")
#: What `bytes.split()` splits on: PEM lines and their CR, LF and indentation, deleted from a block's base64.
_WHITESPACE = b" \t\n\r\x0b\x0c"
#: A PFX starts its outer SEQUENCE with `version INTEGER 3` (RFC 7292); a certificate starts with a SEQUENCE.
_PFX_VERSION = b"\x02\x01\x03"


def _validated_base64(text: bytes) -> bytes:
    """`text` if `base64.b64decode(text, validate=True)` accepts it (raises `binascii.Error` otherwise), without
    its regular-expression pass for well-formed input: what the strict decoder accepts, the validating one
    accepts with the same bytes; the rest is left to it."""
    try:
        binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        base64.b64decode(text, validate=True)
    return text


#: PEM blocks up to this size are memoised (a real certificate is 1-3 KiB of base64), so the memo holds a few MB
#: at most whatever the files hold; a larger block is checked each time it is read.
_MEMOISED_BLOCK_BYTES = 16 * 1024


def _entry(block: bytes) -> str:
    """A PEM block's base64 as the chain entry (it decodes to the certificate's DER): whitespace removed, checked."""
    return _validated_base64(block.translate(None, _WHITESPACE)).decode("ascii")


#: `_entry` memoised on the block as written: the files of a directory send the same intermediates again and
#: again, and checking a block costs more than looking it up (a block that is not base64 raises each time).
_memoised_entry = functools.lru_cache(maxsize=1024)(_entry)


def _chain_entry(block: bytes) -> str:
    return _memoised_entry(block) if len(block) <= _MEMOISED_BLOCK_BYTES else _entry(block)


def _marker(data: bytes, pattern: re.Pattern[bytes], prefix: bytes, position: int) -> re.Match[bytes] | None:
    """The first certificate marker at or after `position`: found by `bytes.find` (memchr), then matched,
    instead of running the pattern at every byte of the base64 body before it."""
    while (start := data.find(prefix, position)) >= 0:
        if (marker := pattern.match(data, start)) is not None:
            return marker
        position = start + len(prefix)
    return None


def _pem_certificates(data: bytes, name: str) -> list[str]:
    chain = []
    position = 0
    while (begin := _marker(data, _PEM_BEGIN, b"-----BEGIN ", position)) is not None and (
        end := _marker(data, _PEM_END, b"-----END ", begin.end())
    ) is not None:
        try:
            chain.append(_chain_entry(data[begin.end() : end.start()]))
        except binascii.Error:
            raise ProbeFailure("file", f"{name}: PEM certificate #{len(chain) + 1} is not valid base64") from None
        position = end.end()
    if not chain:
        raise ProbeFailure("file", f"{name} holds PEM blocks but no certificate")
    return chain


def _base64(der: bytes) -> str:
    return base64.b64encode(der).decode("ascii")


def _pkcs12_certificates(data: bytes, name: str) -> list[str]:
    try:
        # No password: OpenSSL then also accepts the empty password that "export without a password" often uses.
        _, certificate, additional = pkcs12.load_key_and_certificates(data, None)
    except ValueError:
        # cryptography cannot tell a wrong password from damaged data; a password is the likelier case.
        raise ProbeFailure(
            "file", f"{name}: PKCS#12 is password-protected (or damaged); only password-less files are read"
        ) from None
    certificates = ([certificate] if certificate is not None else []) + list(additional)
    if not certificates:
        raise ProbeFailure("file", f"{name}: PKCS#12 file holds no certificate")
    return [_base64(cert.public_bytes(Encoding.DER)) for cert in certificates]


def certificates_in(data: bytes, name: str) -> list[str]:
    """The certificates in the bytes of file `name` as an observation's chain holds them (base64 of the DER),
    in file order (for PKCS#12: its certificate first)."""
    if b"-----BEGIN" in data:
        return _pem_certificates(data, name)
    sequence = element(data) if data[:1] == b"\x30" else None  # a certificate and a PFX are each a SEQUENCE
    if sequence is not None and sequence[1] == len(data):
        if data[sequence[0] : sequence[0] + len(_PFX_VERSION)] == _PFX_VERSION:
            return _pkcs12_certificates(data, name)
        return [_base64(data)]
    raise ProbeFailure("file", f"{name} is neither a PEM nor a DER certificate")
