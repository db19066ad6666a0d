"""`certmon check`'s output: JSON written as the evaluations come (the same bytes pydantic gives for the whole
array), and the table people read, at any terminal width."""

import datetime as dt
import io
import json
import sys

import pytest
from pydantic import TypeAdapter
from rich.console import Console

from services.commands.check import _bulk_stdout
from services.commands.check.output import JsonWriter, render_table, worst_exit_code
from services.commands.exit_codes import EXIT_CRITICAL, EXIT_OK, EXIT_UNKNOWN, EXIT_WARNING
from shared.events import Evaluation
from tests.support.pki import NOW, make_ca, make_leaf
from tests.unit.evaluator.evaluator_support import judge, observation, store


@pytest.fixture(scope="module")
def evaluations() -> list[Evaluation]:
    """Three different evaluations: trusted, untrusted root, and an unreachable endpoint."""
    root = make_ca("writer Root")
    leaf = make_leaf(make_ca("writer CA", issuer=root), ["a.example"])
    trusted = judge(observation(leaf, make_ca("writer CA", issuer=root), host="a.example"), store(root))
    untrusted = judge(observation(make_leaf(None, ["b.example"]), host="b.example"), store(root))
    return [trusted, untrusted, judge(observation(host="c.example"), store(root))]


def _written(evaluations: list[Evaluation]) -> bytes:
    out = io.BytesIO()
    writer = JsonWriter(out)
    for evaluation in evaluations:
        writer.write(evaluation)
    writer.close()
    return out.getvalue()


@pytest.mark.parametrize("count", [0, 2, 3])
def test_several_evaluations_are_the_bytes_of_the_whole_array(evaluations: list[Evaluation], count: int) -> None:
    """Element by element, the output is exactly what pydantic prints for the list (and parses back to it)."""
    expected = TypeAdapter(list[Evaluation]).dump_json(evaluations[:count], indent=2) + b"\n"
    assert _written(evaluations[:count]) == expected
    assert [Evaluation.model_validate(doc) for doc in json.loads(expected)] == evaluations[:count]


def test_one_evaluation_is_an_object(evaluations: list[Evaluation]) -> None:
    """A single target prints its evaluation object, not an array of one."""
    assert _written(evaluations[:1]) == evaluations[0].model_dump_json(indent=2).encode() + b"\n"


def test_evaluations_are_written_as_they_come(evaluations: list[Evaluation]) -> None:
    """Nothing is held back once the output is known to be an array: a bulk check keeps no evaluations."""
    out = io.BytesIO()
    writer = JsonWriter(out)
    writer.write(evaluations[0])
    assert out.getvalue() == b""  # one so far: an object or the start of an array, not yet known
    writer.write(evaluations[1])
    first_two = out.getvalue()
    assert first_two.startswith(b"[\n  {") and evaluations[1].target_key.encode() in first_two
    writer.write(evaluations[2])
    assert out.getvalue().startswith(first_two) and len(out.getvalue()) > len(first_two)


def test_the_worst_exit_code_wins_and_none_is_unknown() -> None:
    """Critical > warning > unknown > ok, whatever the order; no evaluation at all is unknown."""
    assert worst_exit_code([EXIT_OK, EXIT_UNKNOWN, EXIT_WARNING]) == EXIT_WARNING
    assert worst_exit_code({EXIT_CRITICAL, EXIT_OK}) == EXIT_CRITICAL
    assert worst_exit_code([EXIT_OK, EXIT_UNKNOWN]) == EXIT_UNKNOWN
    assert worst_exit_code([]) == EXIT_UNKNOWN


def test_json_goes_to_a_text_only_stdout(evaluations: list[Evaluation], monkeypatch: pytest.MonkeyPatch) -> None:
    """A program that embeds certmon may set `sys.stdout` to a `StringIO`, with no descriptor and no binary layer:
    the JSON reaches it as text, whole, even where a character straddles two writes."""
    text = io.StringIO()
    monkeypatch.setattr(sys, "stdout", text)
    out = _bulk_stdout()
    writer = JsonWriter(out)
    for evaluation in evaluations:
        writer.write(evaluation)
    writer.close()
    assert text.getvalue().encode() == _written(evaluations)
    out.write("é".encode()[:1])
    out.write("é".encode()[1:])
    out.flush()
    assert text.getvalue().endswith("é")


LONG_HOST = "a-long-host-name-for-a-narrow-terminal.example.com"


@pytest.fixture(scope="module")
def expiring() -> list[Evaluation]:
    """A leaf with 4.9 days left under an intermediate that expires first, on a long host name; and one with 200."""
    root = make_ca("table Root")
    short_lived = make_ca("table CA", issuer=root, not_after=NOW + dt.timedelta(days=3))
    leaf = make_leaf(short_lived, [LONG_HOST], not_after=NOW + dt.timedelta(days=4.9))
    issuing = make_ca("table CA 2", issuer=root)
    other = make_leaf(issuing, ["b.example"], not_after=NOW + dt.timedelta(days=200))
    return [
        judge(observation(leaf, short_lived, host=LONG_HOST), store(root)),
        judge(observation(other, issuing, host="b.example"), store(root)),
    ]


def _table(evaluations: list[Evaluation], width: int) -> str:
    out = io.StringIO()
    render_table(evaluations, Console(width=width, file=out, color_system=None))
    return out.getvalue()


def test_days_left_are_whole_days_in_the_table(expiring: list[Evaluation]) -> None:
    """4.9 days left shows as 4 and 200.0 as 200; the evaluation keeps the fraction."""
    assert expiring[0].expiry is not None and 4.8 < expiring[0].expiry.days_remaining < 4.95
    lines = _table(expiring, 200).splitlines()
    (first,) = [line for line in lines if LONG_HOST in line]
    (second,) = [line for line in lines if "b.example" in line]
    assert [cell.strip() for cell in first.split("│")][4] == "4"
    assert [cell.strip() for cell in second.split("│")][4] == "200"
    assert "4.9" not in first and "200.0" not in second


@pytest.mark.parametrize("width", [60, 80, 100, 130, 200])
def test_a_narrow_terminal_never_cuts_a_finding_code(expiring: list[Evaluation], width: int) -> None:
    """At any width every finding code and the target are printed whole on one line, nothing is ellipsised, and
    no line is wider than the terminal: a table while one fits, else one block per target."""
    codes = {f.code for f in expiring[0].findings}
    assert "chain.intermediate_expiring" in codes
    output = _table(expiring, width)
    lines = output.splitlines()
    assert all(any(code in line for line in lines) for code in [*codes, LONG_HOST]), output
    assert "…" not in output
    assert all(len(line) <= width for line in lines)


def test_a_terminal_too_narrow_for_the_table_gets_a_block_per_target(expiring: list[Evaluation]) -> None:
    """At 60 columns: each target on its own line, then its level, grade, whole days and expiry, then its
    findings one per line."""
    certificate = expiring[0].certificate
    assert certificate is not None
    lines = _table(expiring, 60).splitlines()
    start = lines.index(f"{LONG_HOST}:443")
    assert lines[start + 1 : start + 4] == [
        f"  critical · grade A · 4 days left · expires {certificate.not_after:%Y-%m-%d}",
        "  critical: expiry.within_7_days",
        "  warning: chain.intermediate_expiring",
    ]


def test_the_findings_column_wraps_while_a_table_fits(expiring: list[Evaluation]) -> None:
    """Narrower than the table's content but wide enough for the target and the longest code, the table stays
    and its findings column wraps each finding's severity and code apart rather than cut the code."""
    lines = _table(expiring, 130).splitlines()
    assert any("findings" in line for line in lines)
    assert any(LONG_HOST in line for line in lines)
    cells = [line.split("│")[-2].strip() for line in lines if line.startswith("│")]
    assert "chain.intermediate_expiring" in cells and "warning:" in cells
