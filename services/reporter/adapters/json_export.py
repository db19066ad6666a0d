"""Reports as JSON written piece by piece into a file: the same bytes as `pydantic_core.to_json(report, indent=2)`
(the model dump, so it validates back into its model) without holding the whole text of a report of 100,000 rows.

Each field is dumped on its own, and each item of a list field one at a time (a status report's rows are made as
they are written), then indented to its depth: JSON strings never hold a raw newline (it is escaped), so indenting
after every newline indents lines, never text.
"""

from collections.abc import Sequence
from typing import BinaryIO

from pydantic import BaseModel
from pydantic_core import to_json

_INDENT = b"  "


def _indented(dumped: bytes, depth: int) -> bytes:
    """A value dumped at depth 0 as it reads `depth` levels down."""
    return dumped.replace(b"\n", b"\n" + _INDENT * depth)


def write_json(report: BaseModel, out: BinaryIO) -> None:
    """Write `report` as indented JSON to `out`, one field and one list item at a time."""
    out.write(b"{")
    for number, name in enumerate(type(report).model_fields):
        out.write(b",\n  " if number else b"\n  ")
        out.write(to_json(name) + b": ")
        value = getattr(report, name)
        # A list, or the rows a status report makes as they are walked (`domain.report.CertificateRows`).
        if isinstance(value, Sequence) and not isinstance(value, str):
            _write_items(value, out, depth=1)
        else:
            out.write(_indented(to_json(value, indent=2), 1))
    out.write(b"\n}" if type(report).model_fields else b"}")


def _write_items(items: Sequence[object], out: BinaryIO, *, depth: int) -> None:
    if not items:
        out.write(b"[]")
        return
    out.write(b"[")
    inner = _INDENT * (depth + 1)
    for number, item in enumerate(items):
        out.write(b",\n" + inner if number else b"\n" + inner)
        out.write(_indented(to_json(item, indent=2), depth + 1))
    out.write(b"\n" + _INDENT * depth + b"]")
