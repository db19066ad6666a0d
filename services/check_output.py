"""How `certmon check` shows evaluations: a rich table for people, the evaluation object as JSON for tools,
and the Nagios-convention exit code (0 ok, 1 warning, 2 critical, 3 unknown)."""

from collections.abc import Sequence

from pydantic import TypeAdapter
from rich.console import Console
from rich.table import Table
from rich.text import Text

from shared.events import Evaluation

EXIT_OK, EXIT_WARNING, EXIT_CRITICAL, EXIT_UNKNOWN = 0, 1, 2, 3

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


def worst_exit_code(evaluations: Sequence[Evaluation]) -> int:
    """The exit code of several evaluations: the worst, critical > warning > unknown > ok."""
    codes = [exit_code(e) for e in evaluations] or [EXIT_UNKNOWN]
    return max(codes, key=_EXIT_RANK.__getitem__)


_EVALUATIONS = TypeAdapter(list[Evaluation])


def to_json(evaluations: Sequence[Evaluation]) -> bytes:
    """One evaluation object, or an array of them for several targets, as UTF-8 JSON (serialised by pydantic's
    core, and kept as bytes: a bulk check of thousands of files would spend most of its time in the stdlib
    encoder, and then some decoding and re-encoding tens of megabytes)."""
    if len(evaluations) == 1:
        return evaluations[0].model_dump_json(indent=2).encode()
    return _EVALUATIONS.dump_json(list(evaluations), indent=2)


def _target_label(evaluation: Evaluation) -> str:
    t = evaluation.target
    return t.file if t.file else evaluation.target_key


def render_table(evaluations: Sequence[Evaluation], console: Console, *, explain: bool = False) -> None:
    """A table (target, level, grade, days remaining, expiry, top findings); `explain` lists every finding."""
    table = Table(show_lines=False, header_style="bold")
    for column in ("target", "level", "grade", "days left", "expires", "findings"):
        table.add_column(column, no_wrap=column != "findings")
    for ev in evaluations:
        findings = sorted(ev.findings, key=lambda f: -_SEVERITY_RANK[f.severity])
        shown = findings if explain else findings[:3]
        lines = [f"{f.severity}: {f.code}" for f in shown]
        if not explain and len(findings) > 3:
            lines.append(f"… {len(findings) - 3} more (--explain)")
        if ev.error is not None:
            lines.insert(0, f"error ({ev.error.kind}): {ev.error.message}")
        table.add_row(
            _target_label(ev),
            Text(ev.alarm.level, style=_LEVEL_STYLE[ev.alarm.level]),
            ev.security.grade if ev.security else "-",
            f"{ev.expiry.days_remaining:.1f}" if ev.expiry else "-",
            ev.certificate.not_after.strftime("%Y-%m-%d") if ev.certificate else "-",
            "\n".join(lines) or "-",
        )
    console.print(table)
    if explain:
        for ev in evaluations:
            console.print(f"\n[bold]{_target_label(ev)}[/bold] — level {ev.alarm.level}")
            for f in sorted(ev.findings, key=lambda f: -_SEVERITY_RANK[f.severity]):
                console.print(f"  [{_LEVEL_STYLE.get(f.severity, 'dim')}]{f.severity:8}[/] {f.code}: {f.message}")
            if ev.security is not None:
                console.print(
                    f"  grade {ev.security.grade} (ignoring trust {ev.security.grade_ignoring_trust}), "
                    f"based on {ev.security.basis}"
                )
                for cap in ev.security.caps:
                    console.print(f"    capped at {cap.grade}: {cap.reason}")
