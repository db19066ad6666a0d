"""Observe certificate files: PEM (one or more certificates, leaf first), DER, password-less PKCS#12, and
directories of them.

A directory is not observed as one target: `expand_file_targets` turns it into one file target per
certificate file inside (non-recursive, by extension, sorted), so each file has its own observation and
history. A file that cannot be read, is too large, or holds no certificate is an observation with an error of
kind `file`; so is a directory that reaches `observe_file` unexpanded.
"""

import os
from datetime import datetime
from pathlib import Path

import structlog

from services.scanner.domain.limits import DEFAULT_LIMITS, ProbeLimits
from services.scanner.probes.errors import ProbeFailure
from services.scanner.probes.files.formats import certificates_in
from shared.events import Observation, Target

log = structlog.get_logger(__name__)

#: The file names a directory target expands to (compared case-insensitively).
CERTIFICATE_EXTENSIONS = (".pem", ".crt", ".cer", ".der", ".p12", ".pfx")


def certificate_files(directory: str) -> list[str]:
    """The paths of the certificate files directly inside `directory`, by extension, sorted by name; [] if
    unreadable. Strings: a `Path` per file costs more than the rest of listing it."""
    try:
        with os.scandir(directory) as scan:
            # The entry's type comes with the listing (no stat per file, except to follow a symbolic link).
            names = sorted(entry.name for entry in scan if _is_certificate_file(entry))
    except OSError:
        return []
    parent = str(Path(directory))  # spelled as `Path(directory) / name` would spell it ("./d/" → "d")
    return [os.path.join(parent, name) for name in names]  # by name: all share the parent, so the paths' order


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
    if target.file is None or not os.path.isdir(target.file):
        return [target]
    files = certificate_files(target.file)
    return [target.model_copy(update={"file": path}) for path in files] or [target]


def _directory_failure(path: str) -> ProbeFailure:
    count = len(certificate_files(path))
    if count:
        return ProbeFailure("file", f"{path} is a directory of {count} certificate files: observe each one")
    return ProbeFailure("file", f"{path} is a directory with no {'/'.join(CERTIFICATE_EXTENSIONS)} files")


def _read(path: str, limits: ProbeLimits) -> bytes:
    """The file's bytes, at most `max_file_bytes`; a directory is found by the read failing (no stat first).

    Read with `os.read` on a descriptor: a file object and its buffer cost more than reading a small file."""
    limit = limits.max_file_bytes
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            # Ask for the size the file has (plus one, to see it grew) rather than for the limit: a read of n
            # allocates n bytes up front, a megabyte per file in a bulk check. Special files report size 0.
            size = os.fstat(descriptor).st_size
            data = os.read(descriptor, min(size, limit) + 1)
            if len(data) > size:  # it grew, or it is a pipe: read on until the end or past the limit
                chunks, total = [data], len(data)
                while total <= limit and (chunk := os.read(descriptor, limit + 1 - total)):
                    chunks.append(chunk)
                    total += len(chunk)
                data = b"".join(chunks)
        finally:
            os.close(descriptor)
    except IsADirectoryError:
        raise _directory_failure(path) from None
    except OSError as exc:
        if Path(path).is_dir():  # some platforms refuse to open a directory with another error
            raise _directory_failure(path) from None
        raise ProbeFailure("file", f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise ProbeFailure("file", f"{path} is larger than {limit} bytes")
    return data


def observe_file(target: Target, *, now: datetime, limits: ProbeLimits = DEFAULT_LIMITS) -> Observation:
    """Observe the certificates of a file target; never raises for a missing, unreadable or garbage file."""
    path = target.file or ""
    try:
        if not path:
            raise ProbeFailure("file", "the target names no file")
        chain = certificates_in(_read(path, limits), path)
    except ProbeFailure as failure:
        return Observation(target=target, observed_at=now, error=failure.error)
    if len(chain) > limits.max_chain:
        log.warning("chain_truncated", target=target.key, presented=len(chain), kept=limits.max_chain)
        chain = chain[: limits.max_chain]
    return Observation(target=target, observed_at=now, chain=chain)


def observe_directory(path: Path | str, *, now: datetime, limits: ProbeLimits = DEFAULT_LIMITS) -> list[Observation]:
    """One observation per certificate file directly inside `path` (one `file` error if it holds none).

    Blocking file I/O: call it off the event loop. To keep a target's owner and server, expand the target
    with `expand_file_targets` and observe each instead.
    """
    return [observe_file(target, now=now, limits=limits) for target in expand_file_targets(Target(file=str(path)))]
