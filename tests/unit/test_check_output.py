"""`certmon check --json` written as the evaluations come: the same bytes pydantic gives for the whole array."""

import io
import json
import sys

import pytest
from pydantic import TypeAdapter

from services.check_output import JsonWriter, worst_exit_code
from services.commands.check import _bulk_stdout
from services.exit_codes import EXIT_CRITICAL, EXIT_OK, EXIT_UNKNOWN, EXIT_WARNING
from shared.events import Evaluation
from tests.support.pki import make_ca, make_leaf
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
