"""Observe certificate files: PEM (one or more certificates, leaf first), DER, password-less PKCS#12, and
directories of them.

A directory is not observed as one target: `expand_file_targets` turns it into one file target per
certificate file inside (non-recursive, by extension, sorted), so each file has its own observation and
history. A file that cannot be read, is too large, or holds no certificate is an observation with an error of
kind `file`; so is a directory that reaches `observe_file` unexpanded.
"""

import base64
import os
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
        with os.scandir(directory) as scan:
            # The entry's type comes with the listing (no stat per file, except to follow a symbolic link).
            names = sorted(entry.name for entry in scan if _is_certificate_file(entry))
    except OSError:
        return []
    return [directory / name for name in names]  # by name: all share the parent, so this is the paths' order


def _is_certificate_file(entry: os.DirEntry[str]) -> bool:
    dot = entry.name.rfind(".")  # the extension as `Path.suffix` reads it: "..pem" has one, ".pem" none
    if not 0 < dot < len(entry.name) - 1 or entry.name[dot:].lower() not in CERTIFICATE_EXTENSIONS:
        return False
    try:
        return entry.is_file()
    except OSError:  # as `Path.is_file`: what cannot be examined is not a file
        return False


def expand_file_targets(target: Target) -> list[Target]:
    """A directory file target as one target per certificate file inside it; any other target as itself.

    A directory without certificate files stays one target, so its observation says so instead of vanishing.
    """
    if target.file is None or not Path(target.file).is_dir():
        return [target]
    files = certificate_files(Path(target.file))
    return [target.model_copy(update={"file": str(path)}) for path in files] or [target]


def _directory_failure(path: Path) -> ProbeFailure:
    count = len(certificate_files(path))
    if count:
        return ProbeFailure("file", f"{path} is a directory of {count} certificate files: observe each one")
    return ProbeFailure("file", f"{path} is a directory with no {'/'.join(CERTIFICATE_EXTENSIONS)} files")


def _read(path: Path, limits: ProbeLimits) -> bytes:
    """The file's bytes, at most `max_file_bytes`; a directory is found by the open failing (no stat first)."""
    limit = limits.max_file_bytes
    try:
        with open(path, "rb") as handle:
            # Ask for the size the file has (plus one, to see it grew) rather than for the limit: `read(n)`
            # allocates n bytes up front, a megabyte per file in a bulk check. Special files report size 0.
            size = os.fstat(handle.fileno()).st_size
            data = handle.read(min(size, limit) + 1)
            if len(data) > size and len(data) <= limit:
                data += handle.read(limit + 1 - len(data))
    except IsADirectoryError:
        raise _directory_failure(path) from None
    except OSError as exc:
        if path.is_dir():  # some platforms refuse to open a directory with another error
            raise _directory_failure(path) from None
        raise ProbeFailure("file", f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise ProbeFailure("file", f"{path} is larger than {limit} bytes")
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
