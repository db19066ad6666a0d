"""A certmon.yaml with a large estate: its targets are kept compact, and a JSON file is read as what it is."""

import gc
import json
import tracemalloc
from pathlib import Path

import pytest

from shared.config import ConfigError, load_config, parse_config
from shared.config.compact import CompactModels
from shared.config.schema import CertmonConfig, TargetEntry

TARGETS = [
    {"host": "a.example", "tags": ["web", "pci"]},
    {"host": "b.example", "port": 8443, "interval": "15m"},
    {"file": "/etc/ssl/c.pem", "owner": "team"},
]
DOCUMENT = {"owners": {"team": {}}, "targets": TARGETS}


def test_targets_read_back_as_the_entries_they_were_given_as() -> None:
    """Every way of reading the targets (index, negative index, slice, iteration) gives the validated entries,
    with the fields that were set and only those."""
    config = parse_config(DOCUMENT)
    expected = [TargetEntry.model_validate(t) for t in TARGETS]

    assert isinstance(config.targets, CompactModels)
    assert list(config.targets) == expected and config.targets == expected and len(config.targets) == 3
    assert (config.targets[1], config.targets[-1], config.targets[1:]) == (expected[1], expected[2], expected[1:])
    assert [t.model_dump(exclude_unset=True) for t in config.targets] == [
        {"host": "a.example", "tags": ["web", "pci"]},
        {"host": "b.example", "port": 8443, "interval": 900},
        {"file": Path("/etc/ssl/c.pem"), "owner": "team"},
    ]
    with pytest.raises(IndexError):
        config.targets[3]


def test_a_config_dumps_and_copies_as_with_a_list() -> None:
    """`model_dump` writes the targets as a list of mappings (defaults left out on request), and a dump
    validates back into an equal config."""
    config = parse_config(DOCUMENT)
    dumped = config.model_dump(mode="json", exclude_defaults=True)

    assert dumped["targets"] == [
        {"host": "a.example", "tags": ["web", "pci"]},
        {"host": "b.example", "port": 8443, "interval": 900},
        {"file": "/etc/ssl/c.pem", "owner": "team"},
    ]
    assert CertmonConfig.model_validate(config.model_dump()) == config
    assert config.model_copy(update={"targets": config.targets}).targets == config.targets
    assert "targets" not in CertmonConfig().model_dump(exclude_defaults=True)


def test_a_bad_target_is_reported_at_its_place_in_the_list() -> None:
    """Validation errors inside the list keep their path."""
    with pytest.raises(ConfigError) as refused:
        parse_config({"targets": [{"host": "a.example"}, {"host": "b.example", "port": 0}]})
    assert [p.path for p in refused.value.problems] == ["targets[1].port"]


def test_ten_thousand_targets_take_under_a_fifth_of_their_models_size(tmp_path: Path) -> None:
    """The targets of a loaded config take a small fraction of what the same entries take as models."""
    document = {"targets": [{"host": f"h{i}.example", "port": 443, "tags": ["t"]} for i in range(10_000)]}
    path = tmp_path / "certmon.yaml"
    path.write_text(json.dumps(document))
    gc.collect()
    tracemalloc.start()
    try:
        config = load_config(path)
        gc.collect()
        compact, _ = tracemalloc.get_traced_memory()
        as_models = list(config.targets)
        gc.collect()
        both, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(as_models) == 10_000
    assert compact * 5 < both - compact


def test_a_json_file_loads_as_its_yaml_form(tmp_path: Path) -> None:
    """JSON is YAML: a file written as JSON gives the same config as the same document written as YAML."""
    as_json, as_yaml = tmp_path / "a.yaml", tmp_path / "b.yaml"
    as_json.write_text(json.dumps(DOCUMENT))
    as_yaml.write_text(
        "owners: {team: {}}\ntargets:\n"
        "  - {host: a.example, tags: [web, pci]}\n"
        "  - {host: b.example, port: 8443, interval: 15m}\n"
        "  - {file: /etc/ssl/c.pem, owner: team}\n"
    )
    assert load_config(as_json) == load_config(as_yaml)


def test_a_mapping_that_is_not_json_is_read_as_yaml(tmp_path: Path) -> None:
    """A flow mapping that is YAML but not JSON (bare words, NaN) is read by YAML, and a broken one gets YAML's
    error with its line."""
    path = tmp_path / "certmon.yaml"
    path.write_text("{defaults: {interval: 15m}, targets: [{host: a.example, sni: NaN}]}")
    config = load_config(path)
    assert (config.defaults.interval, config.targets[0].sni) == (900, "NaN")

    path.write_text('{"targets": [{"host": "a.example", "sni": NaN}]}')
    assert load_config(path).targets[0].sni == "NaN"

    path.write_text('{"targets": [\n  {"host": "a.example"\n')
    with pytest.raises(ConfigError, match="line 3"):
        load_config(path)


def test_validating_ten_thousand_targets_never_holds_them_all_as_models() -> None:
    """The entries are validated and stored one at a time: the validation's peak stays well under what the same
    entries take as models held together (what validating the list whole would hold, on top of the document)."""
    document = {"targets": [{"host": f"h{i}.example", "port": 443, "tags": ["t"]} for i in range(10_000)]}
    gc.collect()
    tracemalloc.start()
    try:
        config = parse_config(document)
        _, validation_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        as_models = list(config.targets)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(as_models) == 10_000
    assert validation_peak * 2 < held - before
