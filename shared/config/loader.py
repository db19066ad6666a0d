"""Loading `certmon.yaml`: YAML → schema → cross-references, every problem reported with its path.

Errors: `ConfigError` carries a list of `ConfigProblem(path, message)`; nothing here raises anything else
for bad input.
"""

import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from shared.config.schema import CertmonConfig
from shared.settings import Settings

# libyaml's parser where PyYAML was built with it: four times faster and a third less memory at its peak on a
# 100,000-target file (3 s and 280 MB instead of 13 s and 440 MB), which every service loads at start.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _ConfigYamlLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """PyYAML's safe loader with YAML 1.2's booleans: only true and false. YAML 1.1 also reads on, off, yes and no
    as booleans, which would turn `reminders: {info: off}` into false; boolean keys still take `yes` and `on`,
    as strings that the schema reads as booleans."""


_BOOL = "tag:yaml.org,2002:bool"
_ConfigYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ConfigYamlLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def _parse(text: str) -> Any:
    """The document in `text`. A file in JSON (YAML 1.2 is a superset of it; estates of tens of thousands of
    targets are written by tools, often as JSON) is read by the json module, which is tens of times faster than
    any YAML parser and builds no node tree first; anything else, or JSON that does not parse, goes to YAML,
    which also gives the error its line."""
    if text.lstrip().startswith("{"):
        # Nesting deeper than the json module's recursion is YAML's to refuse too, with its line.
        with contextlib.suppress(ValueError, RecursionError):
            return json.loads(text, parse_constant=_not_json)
    return yaml.load(text, Loader=_ConfigYamlLoader)


def _not_json(constant: str) -> Any:
    """`NaN` and `Infinity` are not JSON (the json module accepts them); YAML reads them as strings."""
    raise ValueError(constant)


@dataclass(frozen=True)
class ConfigProblem:
    """One problem: where (`targets[1].port`) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(Exception):
    """The configuration was refused; `problems` lists every reason."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _listing(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _name_references(data: dict[str, Any]) -> list[ConfigProblem]:
    """Owners, servers, SNMP receivers and webhooks named but not defined; works on the raw document, so these are
    reported together with schema errors rather than only once the schema is satisfied."""
    problems: list[ConfigProblem] = []
    owners = _mapping(data.get("owners"))
    servers = _mapping(data.get("servers"))
    channels = _mapping(data.get("channels"))
    receivers = {"snmp": _mapping(channels.get("snmp")), "webhook": _mapping(channels.get("webhook"))}

    def owner(path: str, entry: Any) -> None:
        name = _mapping(entry).get("owner")
        if isinstance(name, str) and name not in owners:
            problems.append(ConfigProblem(path + ".owner", f"owner {name!r} is not defined under owners"))

    owner("defaults", data.get("defaults"))
    for name, server in servers.items():
        owner(f"servers.{name}", server)
    for i, target in enumerate(_listing(data.get("targets"))):
        owner(f"targets[{i}]", target)
        server_name = _mapping(target).get("server")
        if isinstance(server_name, str) and server_name not in servers:
            problems.append(ConfigProblem(f"targets[{i}].server", f"server {server_name!r} is not defined"))
    for i, rule in enumerate(_listing(data.get("certificates"))):
        owner(f"certificates[{i}]", rule)
    for name, entry in owners.items():
        for kind, what in (("snmp", "SNMP receiver"), ("webhook", "webhook")):
            for j, receiver in enumerate(_listing(_mapping(entry).get(kind))):
                # A receiver that is not a name (a list, a mapping) is the schema's to report, not a lookup's.
                if isinstance(receiver, str) and receiver not in receivers[kind]:
                    problems.append(
                        ConfigProblem(f"owners.{name}.{kind}[{j}]", f"{what} {receiver!r} is not in channels.{kind}")
                    )
        if _mapping(entry).get("email") and channels.get("email") is None:
            problems.append(
                ConfigProblem(f"owners.{name}.email", "email addresses given but channels.email is not set")
            )
    return problems


def _model_checks(config: CertmonConfig) -> list[ConfigProblem]:
    """What needs the validated model: duplicate targets and CA files that do not exist."""
    problems: list[ConfigProblem] = []
    seen: dict[str, int] = {}
    for i, target in enumerate(config.targets):
        key = target.to_target(config.defaults).key
        if key in seen:
            problems.append(ConfigProblem(f"targets[{i}]", f"duplicates targets[{seen[key]}] ({key})"))
        seen.setdefault(key, i)
    for i, path in enumerate(config.trust.ca_files):
        if not path.is_file():
            problems.append(ConfigProblem(f"trust.ca_files[{i}]", f"{path} does not exist or is not a file"))
    return problems


def parse_config(data: Any, source: str = "certmon.yaml") -> CertmonConfig:
    """Validate an already-parsed document; raises ConfigError with every problem found."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [ConfigProblem("(top level)", "the file must be a mapping of sections")])
    references = _name_references(data)
    try:
        config = CertmonConfig.model_validate(data)
    except ValidationError as exc:
        problems = [ConfigProblem(_location(err["loc"]), err["msg"]) for err in exc.errors()]
        raise ConfigError(source, problems + references) from None
    problems = references + _model_checks(config)
    if problems:
        raise ConfigError(source, problems)
    return config


def load_config(path: Path) -> CertmonConfig:
    """Read and validate `certmon.yaml`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [ConfigProblem("(file)", exc.strerror or str(exc))]) from None
    try:
        data = _parse(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise ConfigError(
            str(path), [ConfigProblem(where, f"not valid YAML: {getattr(exc, 'problem', exc)}")]
        ) from None
    except (ValueError, TypeError, AttributeError) as exc:
        # PyYAML's constructors convert scalars with Python's own functions and pass on what they raise: a date
        # that does not exist (2001-13-45), `!!int many`, `!!timestamp soon`, an integer past Python's digit limit.
        problem = ConfigProblem("(file)", f"not valid YAML: a value cannot be read: {exc}")
        raise ConfigError(str(path), [problem]) from None
    return parse_config(data, str(path))


def load_app_config(settings: Settings, path: Path | None = None) -> CertmonConfig:
    """`certmon.yaml` from `path`, else `CERTMON_CONFIG`, else an empty configuration."""
    chosen = path or settings.config
    return load_config(chosen) if chosen is not None else CertmonConfig()
