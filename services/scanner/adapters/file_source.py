"""Observe a certificate file: PEM (one or more certificates, leaf first) or a single DER certificate.

The scanner records what the file holds and does not judge it: a PEM block whose base64 decodes is passed on
even if it is not a well-formed certificate (the evaluator turns that into a finding). A file that cannot be
read, is too large, or holds neither PEM certificates nor a DER structure is an observation with an error of
kind `file`. PKCS#12 is not read yet.
"""

import base64
import binascii
import re
from datetime import datetime
from pathlib import Path

import structlog

from services.scanner.adapters.probe_errors import ProbeFailure
from services.scanner.domain import DEFAULT_LIMITS, ProbeLimits
from shared.events import Observation, Target

log = structlog.get_logger(__name__)

_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----(.*?)-----END (?:X509 |TRUSTED )?CERTIFICATE-----", re.S
)


def _read(path: Path, limits: ProbeLimits) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(limits.max_file_bytes + 1)
    except OSError as exc:
        raise ProbeFailure("file", f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limits.max_file_bytes:
        raise ProbeFailure("file", f"{path} is larger than {limits.max_file_bytes} bytes")
    return data


def _pem_certificates(data: bytes, path: Path) -> list[bytes]:
    ders = []
    for index, match in enumerate(_PEM_CERTIFICATE.finditer(data)):
        try:
            ders.append(base64.b64decode(b"".join(match[1].split()), validate=True))
        except binascii.Error:
            raise ProbeFailure("file", f"{path}: PEM certificate #{index + 1} is not valid base64") from None
    return ders


def _der_length(data: bytes) -> int | None:
    """The total length a DER SEQUENCE at the start of `data` declares, or None if it is not one."""
    if len(data) < 2 or data[0] != 0x30:
        return None
    first = data[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if count == 0 or count > 4 or len(data) < 2 + count:
        return None
    return 2 + count + int.from_bytes(data[2 : 2 + count], "big")


def _read_certificates(path: Path, limits: ProbeLimits = DEFAULT_LIMITS) -> list[bytes]:
    """The DER certificates in a PEM or DER file, in file order; raises ProbeFailure(kind="file")."""
    data = _read(path, limits)
    if b"-----BEGIN" in data:
        ders = _pem_certificates(data, path)
        if not ders:
            raise ProbeFailure("file", f"{path} holds PEM blocks but no certificate")
        return ders
    if _der_length(data) == len(data):
        return [data]
    raise ProbeFailure("file", f"{path} is neither a PEM nor a DER certificate")


def observe_file(target: Target, *, now: datetime, limits: ProbeLimits = DEFAULT_LIMITS) -> Observation:
    """Observe the certificates of a file target; never raises for a missing, unreadable or garbage file."""
    path = Path(target.file or "")
    try:
        if not target.file:
            raise ProbeFailure("file", "the target names no file")
        ders = _read_certificates(path, limits)
    except ProbeFailure as failure:
        log.info("file_observed", target=target.key, error_kind="file")
        return Observation(target=target, observed_at=now, error=failure.error)
    if len(ders) > limits.max_chain:
        log.warning("chain_truncated", target=target.key, presented=len(ders), kept=limits.max_chain)
        ders = ders[: limits.max_chain]
    log.info("file_observed", target=target.key, certificates=len(ders))
    return Observation(target=target, observed_at=now, chain=[base64.b64encode(der).decode("ascii") for der in ders])
