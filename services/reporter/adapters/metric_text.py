"""The Prometheus text exposition format (0.0.4), written directly, each family spooled to a file of its own.

`/metrics` serves every target at once, so a scrape of 100,000 targets renders millions of samples; building them
as client-library objects costs several times more than formatting the lines. Label values are attacker-chosen text
(certificate subjects), so every value goes through `escape`. The format wants each family's samples together while
the targets come a page at a time, so each family collects a page's lines and `FamilyFiles` appends them to that
family's temporary file: the text of a whole estate is never in memory, only on disk until it has been served.
"""

import math
import os
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from typing import IO

_TYPES = frozenset({"gauge", "counter", "untyped"})
#: Bytes per chunk read back: few enough thread hops for a large body, small beside a scrape's other memory.
CHUNK_BYTES = 256 * 1024


def escape(value: str) -> str:
    """A label value escaped for the text format: backslash, double quote and line feed."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def number(value: float) -> str:
    """A sample value as Prometheus reads it (integers without a fraction)."""
    if type(value) is int:
        return str(value)
    if math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")


class Family:
    """One metric family: its help and type lines, and the sample lines added since they were last spooled."""

    __slots__ = ("help", "lines", "name", "type")

    def __init__(self, name: str, help_text: str, kind: str = "gauge") -> None:
        if kind not in _TYPES:
            raise ValueError(f"unsupported metric type {kind!r}")
        self.name, self.help, self.type = name, help_text, kind
        self.lines: list[str] = []

    def add(self, label_text: str, value: float) -> None:
        """Add a sample; `label_text` is already escaped (values passed through `escape`)."""
        text = str(value) if type(value) is int else number(value)
        self.lines.append(f"{self.name}{{{label_text}}} {text}\n" if label_text else f"{self.name} {text}\n")

    def header(self) -> str:
        """The family's help and type lines, written even without samples, so the family is always listed."""
        help_text = self.help.replace("\\", "\\\\").replace("\n", "\\n")
        return f"# HELP {self.name} {help_text}\n# TYPE {self.name} {self.type}\n"


def _close(files: list[IO[bytes]]) -> None:
    for file in files:
        file.close()


class FamilyFiles:
    """The text of some families, each in a temporary file of its own, read back in order once complete.

    The files are closed (and their disk space freed) when this object is closed or no longer referenced: the
    responses streaming it hold it, so a rendering that two scrapes share lives until both are served.
    """

    def __init__(self, families: Sequence[Family]) -> None:
        self._families = list(families)
        # Open past this call on purpose: the finalizer closes them when the text is no longer read.
        self._files: list[IO[bytes]] = [tempfile.TemporaryFile() for _ in self._families]  # noqa: SIM115
        self._closer = weakref.finalize(self, _close, self._files)
        for family, file in zip(self._families, self._files, strict=True):
            file.write(family.header().encode())

    def spool(self) -> None:
        """Append each family's pending lines to its file and forget them."""
        for family, file in zip(self._families, self._files, strict=True):
            if family.lines:
                file.write("".join(family.lines).encode())
                family.lines.clear()

    def complete(self) -> None:
        """Spool what is pending and write it through, so that `chunks` reads everything; nothing is added after."""
        self.spool()
        for file in self._files:
            file.flush()

    def chunks(self, size: int = CHUNK_BYTES) -> Iterator[bytes]:
        """The whole text, family by family, in chunks of at most `size` bytes. Readers do not share a file
        position (positional reads), so several may read at once, each from its own thread."""
        for file in self._files:
            fd, offset = file.fileno(), 0
            while chunk := os.pread(fd, size, offset):
                offset += len(chunk)
                yield chunk

    def close(self) -> None:
        """Close the files now (a reader still running fails)."""
        self._closer()
