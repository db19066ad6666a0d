"""Observe certificate files: PEM (one or more certificates, leaf first), DER, password-less PKCS#12, and
directories of them.

A directory is not observed as one target: `expand_file_targets` turns it into one file target per
certificate file inside (non-recursive, by extension, sorted), so each file has its own observation and
history. A file that cannot be read, is too large, or holds no certificate is an observation with an error of
kind `file`; so is a directory that reaches `observe_file` unexpanded.
"""

import base64
from datetime import datetime
from pathlib import Path

import structlog

from services.scanner.adapters.file_formats import certificates_in
from services.scanner.adapters.probe_errors import ProbeFailure
from services.scanner.domain import DEFAULT_LIMITS, ProbeLimits
from shared.events import Observation, Target

log = structlog.get_logger(__name__)

#: The file names a directory target expands to (compared case-insensitively).
CERTIFICATE_EXTENSIONS = (".pem", ".crt", ".cer", ".der", ".p12", ".pfx")


def certificate_files(directory: Path) -> list[Path]:
    """The certificate files directly inside `directory`, by extension, sorted by name; [] if unreadable."""
    try:
        entries = list(directory.iterdir())
    except OSError:
        return []
    return sorted(entry for entry in entries if entry.suffix.lower() in CERTIFICATE_EXTENSIONS and entry.is_file())


def expand_file_targets(target: Target) -> list[Target]:
    """A directory file target as one target per certificate file inside it; any other target as itself.

    A directory without certificate files stays one target, so its observation says so instead of vanishing.
    """
    if target.file is None or not Path(target.file).is_dir():
        return [target]
    files = certificate_files(Path(target.file))
    return [target.model_copy(update={"file": str(path)}) for path in files] or [target]


def _read(path: Path, limits: ProbeLimits) -> bytes:
    if path.is_dir():
        count = len(certificate_files(path))
        if count:
            raise ProbeFailure("file", f"{path} is a directory of {count} certificate files: observe each one")
        raise ProbeFailure("file", f"{path} is a directory with no {'/'.join(CERTIFICATE_EXTENSIONS)} files")
    try:
        with path.open("rb") as handle:
            data = handle.read(limits.max_file_bytes + 1)
    except OSError as exc:
        raise ProbeFailure("file", f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limits.max_file_bytes:
        raise ProbeFailure("file", f"{path} is larger than {limits.max_file_bytes} bytes")
    return data


def observe_file(target: Target, *, now: datetime, limits: ProbeLimits = DEFAULT_LIMITS) -> Observation:
    """Observe the certificates of a file target; never raises for a missing, unreadable or garbage file."""
    path = Path(target.file or "")
    try:
        if not target.file:
            raise ProbeFailure("file", "the target names no file")
        ders = certificates_in(_read(path, limits), str(path))
    except ProbeFailure as failure:
        log.info("file_observed", target=target.key, error_kind="file")
        return Observation(target=target, observed_at=now, error=failure.error)
    if len(ders) > limits.max_chain:
        log.warning("chain_truncated", target=target.key, presented=len(ders), kept=limits.max_chain)
        ders = ders[: limits.max_chain]
    log.info("file_observed", target=target.key, certificates=len(ders))
    return Observation(target=target, observed_at=now, chain=[base64.b64encode(der).decode("ascii") for der in ders])


def observe_directory(path: Path | str, *, now: datetime, limits: ProbeLimits = DEFAULT_LIMITS) -> list[Observation]:
    """One observation per certificate file directly inside `path` (one `file` error if it holds none).

    Blocking file I/O: call it off the event loop. To keep a target's owner and server, expand the target
    with `expand_file_targets` and observe each instead.
    """
    return [observe_file(target, now=now, limits=limits) for target in expand_file_targets(Target(file=str(path)))]
