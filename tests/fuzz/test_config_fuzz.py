"""certmon.yaml under hostile input (issue 18): whatever a file holds, loading it gives a configuration or
`ConfigError` with its problems, nothing else, and soon; `certmon config validate` answers 0 or 1 (its 2, for a file
that is not UTF-8, is tests/integration/cli/test_bad_deployment_input.py's).

- arbitrary text, and arbitrary YAML and JSON documents, as the file;
- arbitrary Python structures given to `parse_config` (what a tool that builds the document hands it);
- the design's example with one value replaced by anything, one key removed or one key added, at any depth;
- the YAML that breaks parsers: explicit tags whose constructors raise, nesting past any limit, integers past
  Python's digit limit, alias bombs.
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.commands.validate import validate
from shared.config import CertmonConfig, ConfigError, load_config
from shared.config.loader import parse_config
from shared.config.secrets import secret_problems
from shared.template_checks import template_problems
from tests.unit.shared.test_config import DESIGN_EXAMPLE

#: Bounded so the file runs in seconds; no example database, so nothing is written into the checkout. A deadline
#: per example catches a loader that takes seconds on a small document (what becomes minutes on a large one).
FUZZ = settings(
    max_examples=150,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: The design's example as a document, the base of the mutations.
EXAMPLE: dict[str, Any] = yaml.safe_load(DESIGN_EXAMPLE)

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["1h", "15m", "0s", "-1d", "443", "a.example", "*.example", "v2c", "group", "full", "expiry"])
)
_KEYS = st.text(max_size=12) | _SCALARS.map(str)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=20,
)


def _outcome(load: Callable[[], CertmonConfig]) -> CertmonConfig | None:
    """The configuration `load` gives, or None if it refused it with problems; anything else fails the test. A
    configuration is checked further the way `config validate` does, which must not raise either."""
    try:
        config = load()
    except ConfigError as refused:
        assert refused.problems and all(p.path and p.message for p in refused.problems)
        return None
    template_problems(config)
    secret_problems(config, environ={})
    return config


def _load_text(tmp_path: Path, text: str) -> CertmonConfig | None:
    path = tmp_path / "certmon.yaml"
    path.write_text(text, encoding="utf-8")
    return _outcome(lambda: load_config(path))


@FUZZ
@given(text=st.text(max_size=300))
def test_any_text_loads_or_is_refused(tmp_path: Path, text: str) -> None:
    _load_text(tmp_path, text)


@FUZZ
@given(document=_DOCUMENTS)
def test_any_yaml_or_json_document_loads_or_is_refused(tmp_path: Path, document: Any) -> None:
    _load_text(tmp_path, yaml.safe_dump(document))
    _load_text(tmp_path, json.dumps(document))


@FUZZ
@given(document=_DOCUMENTS)
def test_any_structure_parses_or_is_refused(document: Any) -> None:
    _outcome(lambda: parse_config(document))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every value in `node`, containers included."""
    found = [prefix]
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        found += _paths(value, (*prefix, key))
    return found


@st.composite
def mutated_example(draw: st.DrawFn) -> Any:
    """The design's example with one value replaced, one key removed or one key added."""
    document = json.loads(json.dumps(EXAMPLE))  # a deep copy
    path = draw(st.sampled_from(_paths(document)[1:]))
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    how = draw(st.sampled_from(["replace", "remove", "add"]))
    if how == "remove":
        del parent[path[-1]]
    elif how == "add" and isinstance(parent[path[-1]], dict):
        parent[path[-1]][draw(st.text(max_size=12))] = draw(_DOCUMENTS)
    else:
        parent[path[-1]] = draw(_DOCUMENTS)
    return document


def test_the_example_is_valid(tmp_path: Path) -> None:
    """The baseline of the mutations below: unmutated, it loads (its CA files list is empty)."""
    assert _load_text(tmp_path, DESIGN_EXAMPLE) is not None


@FUZZ
@given(document=mutated_example())
def test_a_mutated_example_loads_or_is_refused(tmp_path: Path, document: Any) -> None:
    _load_text(tmp_path, yaml.safe_dump(document))


@FUZZ
@given(document=mutated_example())
def test_config_validate_answers_valid_or_its_problems(
    tmp_path: Path, document: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """0 and "valid", or 1 and the count of problems; never an exception."""
    path = tmp_path / "certmon.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    rc = validate(path)
    out = capsys.readouterr().out
    assert (rc, "problem(s)" in out) in ((0, False), (1, True)), out


#: Documents that PyYAML or the json module turn into exceptions other than a parse error.
HOSTILE = {
    "impossible date": "targets: [{host: a.example}]\nwhen: 2001-13-45\n",
    "timestamp tag on text": "defaults: {interval: !!timestamp soon}\n",
    "int tag on text": "defaults: {thresholds: {info_days: !!int many}}\n",
    "float tag on text": "defaults: {thresholds: {info_days: !!float many}}\n",
    "integer past the digit limit": "targets: [{host: a.example, port: 1" + "0" * 5000 + "}]\n",
    "hex integer past the digit limit": "targets: [{host: a.example, port: 0x" + "f" * 5000 + "}]\n",
    "JSON nested past the recursion limit": '{"targets": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "YAML nested past the parser's limit": "targets: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "python object tag": "targets: !!python/object/apply:os.system [id]\n",
    "alias bomb": "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcdefg", "bcdefgh", strict=True))
    + "targets: *h\n",
    "self-referencing alias": "owners: &o {team: {email: [a@example.com], more: *o}}\n",
}


@pytest.mark.parametrize("text", list(HOSTILE.values()), ids=list(HOSTILE))
def test_yaml_that_breaks_parsers_is_refused_with_a_problem(tmp_path: Path, text: str) -> None:
    assert _load_text(tmp_path, text) is None
