"""How `certmon check` shows evaluations: a rich table for people, the evaluation object as JSON for tools,
and the Nagios-convention exit code (0 ok, 1 warning, 2 critical, 3 unknown)."""

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, BinaryIO

from pydantic import TypeAdapter

from services.commands.exit_codes import EXIT_CRITICAL, EXIT_OK, EXIT_UNKNOWN, EXIT_WARNING
from shared.events import Evaluation

if TYPE_CHECKING:
    from rich.console import Console

_LEVEL_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan", "ok": "green"}
_SEVERITY_RANK = {"critical": 3, "warning": 2, "info": 1, "notice": 0}
# Which exit code wins when several targets disagree: a critical certificate must not hide behind
# an endpoint we could not reach, so unknown ranks below warning and critical (as check_multi does).
_EXIT_RANK = {EXIT_OK: 0, EXIT_UNKNOWN: 1, EXIT_WARNING: 2, EXIT_CRITICAL: 3}


def exit_code(evaluation: Evaluation) -> int:
    """The exit code of one evaluation: unknown when the target could not be observed at all."""
    if not evaluation.reachable or evaluation.certificate is None:
        return EXIT_UNKNOWN
    return {"critical": EXIT_CRITICAL, "warning": EXIT_WARNING}.get(evaluation.alarm.level, EXIT_OK)


def worst_exit_code(codes: Iterable[int]) -> int:
    """The exit code of several evaluations' codes: the worst, critical > warning > unknown > ok; none is
    unknown."""
    return max(codes, key=_EXIT_RANK.__getitem__, default=EXIT_UNKNOWN)


_EVALUATIONS = TypeAdapter(list[Evaluation])


class JsonWriter:
    """Writes `certmon check --json` as the evaluations come: one evaluation as an object, several as an array,
    so a bulk check of thousands of files holds none of them (200 MB for 10,000) and prints as it goes.

    Serialised by pydantic's core, as UTF-8 bytes; each array element is cut from a one-element array so it is
    indented as pydantic indents a whole array: the output is the same bytes either way.
    """

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._count = 0
        self._first: Evaluation | None = None  # held until a second one says an array it is

    def write(self, evaluation: Evaluation) -> None:
        """Add one evaluation to the output."""
        if self._count == 0:
            self._first = evaluation
        else:
            if self._first is not None:
                self._out.write(b"[\n")
                self._out.write(_element(self._first))
                self._first = None
            self._out.write(b",\n")
            self._out.write(_element(evaluation))
        self._count += 1

    def close(self) -> None:
        """End the output: the single object, or the array's close, or `[]` when there was nothing."""
        if self._first is not None:
            self._out.write(self._first.model_dump_json(indent=2).encode())
        else:
            self._out.write(b"\n]" if self._count else b"[]")
        self._out.write(b"\n")
        self._out.flush()


def _element(evaluation: Evaluation) -> memoryview:
    return memoryview(_EVALUATIONS.dump_json([evaluation], indent=2))[2:-2]  # "[\n" + "  {...}" + "\n]", uncopied


def _target_label(evaluation: Evaluation) -> str:
    t = evaluation.target
    return t.file if t.file else evaluation.target_key


_HEADERS = ("target", "level", "grade", "days left", "expires", "findings")


def _row(ev: Evaluation, *, explain: bool) -> tuple[list[str], list[str]]:
    """The cells of one evaluation's row (findings one per line) and the codes it shows."""
    findings = sorted(ev.findings, key=lambda f: -_SEVERITY_RANK[f.severity])
    shown = findings if explain else findings[:3]
    lines = [f"{f.severity}: {f.code}" for f in shown]
    if not explain and len(findings) > 3:
        lines.append(f"… {len(findings) - 3} more (--explain)")
    if ev.error is not None:
        lines.insert(0, f"error ({ev.error.kind}): {ev.error.message}")
    cells = [
        _target_label(ev),
        ev.alarm.level,
        ev.security.grade if ev.security else "-",
        str(math.floor(ev.expiry.days_remaining)) if ev.expiry else "-",  # whole days; --json keeps the fraction
        ev.certificate.not_after.strftime("%Y-%m-%d") if ev.certificate else "-",
        "\n".join(lines) or "-",
    ]
    return cells, [f.code for f in shown]


def _fitted_widths(rows: list[list[str]], codes: list[str], width: int) -> list[int | None] | None:
    """Column widths that fit the table in `width` (None: as wide as its content): the days header wraps and
    the findings wrap at spaces, one finding per line, so that every target and every finding code stays whole.
    None when no table that narrow can keep them whole."""
    natural = [
        max(len(line) for text in column for line in text.split("\n")) for column in zip(_HEADERS, *rows, strict=False)
    ]
    room = width - (3 * len(_HEADERS) + 1)  # rich's box: a rule between and around the columns, a space each side
    if sum(natural) <= room:
        return [None] * len(_HEADERS)
    target, level, grade, _, expires, findings = natural
    days = max([len("days"), *(len(row[3]) for row in rows)])
    left = room - target - level - grade - days - expires
    if left < max(map(len, codes), default=len("findings")):
        return None
    return [target, level, grade, days, expires, min(findings, left)]


#: What `--explain` says about how an incomplete chain was (or was not) completed, by `chain.completed_from`.
_COMPLETION_NOTES = {
    "cache": "chain completed with an intermediate that a target checked earlier in this run sent (completed_from "
    "cache); checked alone, or before that target, it would not be",
    "aia": "chain completed from the intermediate its caIssuers URL serves (completed_from aia)",
    None: "chain not completed: certmon check completes a chain from the intermediates that targets checked "
    "before it in the same run sent, or from its caIssuers URL (AIA)",
}


def _completion_note(ev: Evaluation) -> str | None:
    """How an incomplete chain was completed, or that it was not; None for a chain sent whole."""
    if ev.chain.completed_from is None and all(f.code != "chain.incomplete" for f in ev.findings):
        return None
    return _COMPLETION_NOTES[ev.chain.completed_from]


def render_table(evaluations: Sequence[Evaluation], console: "Console", *, explain: bool = False) -> None:
    """A table (target, level, grade, whole days remaining, expiry, top findings) fitted to the console's width,
    or one block per target where no table fits with every finding code whole; `explain` lists every finding."""
    from rich.table import Table  # rich loads only for people: `--json` in a monitoring loop never needs it
    from rich.text import Text

    built = [_row(ev, explain=explain) for ev in evaluations]
    rows = [cells for cells, _ in built]
    widths = _fitted_widths(rows, [code for _, codes in built for code in codes], console.width)
    if widths is None:
        for ev, (target, level, grade, days, expires, findings) in zip(evaluations, rows, strict=True):
            console.print(Text(target, style="bold", overflow="fold"))
            summary = f" · grade {grade} · {days} days left · expires {expires}"
            console.print(Text.assemble("  ", (level, _LEVEL_STYLE[ev.alarm.level]), summary))
            for line in findings.split("\n") if findings != "-" else ():
                console.print(Text(f"  {line}", overflow="fold"))
    else:
        table = Table(show_lines=False, header_style="bold")
        for header, column_width in zip(_HEADERS, widths, strict=True):
            # A word too long for its column is folded, not cut: a finding code is never ellipsised.
            table.add_column(
                header, width=column_width, overflow="fold", justify="right" if header == "days left" else "left"
            )
        for ev, cells in zip(evaluations, rows, strict=True):
            table.add_row(cells[0], Text(cells[1], style=_LEVEL_STYLE[ev.alarm.level]), *cells[2:])
        console.print(table)
    if explain:
        for ev in evaluations:
            console.print(f"\n[bold]{_target_label(ev)}[/bold] — level {ev.alarm.level}")
            for f in sorted(ev.findings, key=lambda f: -_SEVERITY_RANK[f.severity]):
                console.print(f"  [{_LEVEL_STYLE.get(f.severity, 'dim')}]{f.severity:8}[/] {f.code}: {f.message}")
            note = _completion_note(ev)
            if note is not None:
                console.print(f"  {note}")
            if ev.security is not None:
                console.print(
                    f"  grade {ev.security.grade} (ignoring trust {ev.security.grade_ignoring_trust}), "
                    f"based on {ev.security.basis}"
                )
                for cap in ev.security.caps:
                    console.print(f"    capped at {cap.grade}: {cap.reason}")
