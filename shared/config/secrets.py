"""The secrets `certmon.yaml` names (`*_env` variables and `*_file` files), checked before a service starts.

The notifier reads them when it delivers; checked at start, a Secret key missing from a deployment stops the pod
with its name instead of failing every delivery later. Problems name the variable or file, never its content.
"""

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from shared.config.loader import ConfigProblem
from shared.config.schema import CertmonConfig


def _named_secrets(config: CertmonConfig) -> Iterator[tuple[str, str | None, Path | None]]:
    """(where, environment variable, file) for every secret the channels name."""
    email = config.channels.email
    if email is not None:
        yield "channels.email.password", email.password_env, email.password_file
    for name, receiver in config.channels.snmp.items():
        for key in ("community", "auth_key", "priv_key"):
            yield f"channels.snmp.{name}.{key}", getattr(receiver, f"{key}_env"), getattr(receiver, f"{key}_file")
    for name, hook in config.channels.webhook.items():
        yield f"channels.webhook.{name}.secret", hook.secret_env, hook.secret_file
        for header, variable in hook.headers_env.items():
            yield f"channels.webhook.{name}.headers_env.{header}", variable, None


def _file_problem(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or type(exc).__name__}"
    except UnicodeDecodeError:
        return f"{path} is not UTF-8 text"
    return f"{path} is empty" if not text.strip() else None


def secret_problems(config: CertmonConfig, environ: Mapping[str, str] | None = None) -> list[ConfigProblem]:
    """Every named secret that is unset, empty or unreadable: `*_env` in `environ` (default: the process's),
    `*_file` on disk."""
    env = os.environ if environ is None else environ
    problems: list[ConfigProblem] = []
    for where, variable, path in _named_secrets(config):
        if variable is not None and not env.get(variable):
            problems.append(ConfigProblem(where + "_env", f"environment variable {variable} is not set"))
        if path is not None and (reason := _file_problem(path)) is not None:
            problems.append(ConfigProblem(where + "_file", reason))
    return problems
