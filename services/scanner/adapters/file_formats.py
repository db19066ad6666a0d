"""The certificates inside the bytes of a certificate file: PEM, DER or password-less PKCS#12.

The scanner records what the file holds and does not judge it: a PEM block whose base64 decodes is passed on
even if it is not a well-formed certificate (the evaluator turns that into a finding). Anything that is none
of these raises `ProbeFailure(kind="file")`.
"""

import base64
import binascii
import re

from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from services.scanner.adapters.probe_errors import ProbeFailure

_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----(.*?)-----END (?:X509 |TRUSTED )?CERTIFICATE-----", re.S
)
#: A PFX starts its outer SEQUENCE with `version INTEGER 3` (RFC 7292); a certificate starts with a SEQUENCE.
_PFX_VERSION = b"\x02\x01\x03"


def _pem_certificates(data: bytes, name: str) -> list[bytes]:
    ders = []
    for index, match in enumerate(_PEM_CERTIFICATE.finditer(data)):
        try:
            ders.append(base64.b64decode(b"".join(match[1].split()), validate=True))
        except binascii.Error:
            raise ProbeFailure("file", f"{name}: PEM certificate #{index + 1} is not valid base64") from None
    if not ders:
        raise ProbeFailure("file", f"{name} holds PEM blocks but no certificate")
    return ders


def _der_header(data: bytes) -> tuple[int, int] | None:
    """(header length, total length) a DER SEQUENCE at the start of `data` declares, or None if it is not one."""
    if len(data) < 2 or data[0] != 0x30:
        return None
    first = data[1]
    if first < 0x80:
        return 2, 2 + first
    count = first & 0x7F
    if count == 0 or count > 4 or len(data) < 2 + count:
        return None
    return 2 + count, 2 + count + int.from_bytes(data[2 : 2 + count], "big")


def _pkcs12_certificates(data: bytes, name: str) -> list[bytes]:
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
    return [cert.public_bytes(Encoding.DER) for cert in certificates]


def certificates_in(data: bytes, name: str) -> list[bytes]:
    """The DER certificates in the bytes of file `name`, in file order (for PKCS#12: its certificate first)."""
    if b"-----BEGIN" in data:
        return _pem_certificates(data, name)
    header = _der_header(data)
    if header is not None and header[1] == len(data):
        if data[header[0] : header[0] + len(_PFX_VERSION)] == _PFX_VERSION:
            return _pkcs12_certificates(data, name)
        return [data]
    raise ProbeFailure("file", f"{name} is neither a PEM nor a DER certificate")
