"""The sandbox that user-supplied Jinja2 templates run in, and the syntax checks of the templates a
`certmon.yaml` carries (SNMP receivers' `message_template`).

Templates are the operator's to replace (`channels.email.templates`, `message_template`), so they are treated as
hostile: Jinja's immutable sandbox refuses attributes such as `__class__` and `__globals__` with SecurityError,
and `BoundedSandbox` also refuses the arithmetic that exhausts memory or time in one expression (`'a' * 10**9`,
`9 ** 10**9`); `render_bounded` stops output past a limit while it is produced, and turns whatever a template
raises into `TemplateFailed`.

They live outside `shared.config` because the schema is imported by every service's domain, which may import
no template library; `certmon config validate` and the notifier's start run the checks on a loaded config.
"""

import operator
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from shared.config import CertmonConfig, ConfigProblem

#: The longest string or list one `*` may make in a template: far beyond any message, far below a memory problem.
MAX_REPEAT_LENGTH = 1_000_000
#: The most bits a `**` may make: an integer no message needs more of, and one Python computes at once.
MAX_POWER_BITS = 4096


class TemplateFailed(Exception):
    """A template could not render: the sandbox refused it, it raised, or its output passed the limit."""


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with `*` and `**` bounded (its `range` is bounded already)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator_name: str, left: Any, right: Any) -> Any:
        """`left * right` unless it repeats a sequence past MAX_REPEAT_LENGTH; `left ** right` unless the
        integer would pass MAX_POWER_BITS."""
        if operator_name == "*":
            for sequence, times in ((left, right), (right, left)):
                repeated = isinstance(sequence, str | bytes | list | tuple) and isinstance(times, int)
                if repeated and len(sequence) * times > MAX_REPEAT_LENGTH:
                    raise SecurityError(f"repeating a sequence past {MAX_REPEAT_LENGTH} items is refused")
            return operator.mul(left, right)
        integers = isinstance(left, int) and isinstance(right, int)
        if integers and right > 0 and max(abs(left).bit_length(), 1) * right > MAX_POWER_BITS:
            raise SecurityError(f"a power past {MAX_POWER_BITS} bits is refused")
        return operator.pow(left, right)


def render_bounded(template: jinja2.Template, context: Mapping[str, Any], *, limit: int) -> str:
    """`template` rendered with `context`, stopped as soon as the output passes `limit` characters (a loop of
    large strings never builds them all); TemplateFailed with the reason for anything that goes wrong."""
    out: list[str] = []
    size = 0
    try:
        for chunk in template.generate(context):
            size += len(chunk)
            if size > limit:
                raise TemplateFailed(f"output exceeds {limit} characters")
            out.append(chunk)
    except TemplateFailed:
        raise
    except Exception as exc:  # a template can raise anything: ZeroDivisionError, OverflowError from range, ...
        raise TemplateFailed(f"{type(exc).__name__}: {exc}") from exc
    return "".join(out)


def template_problems(config: CertmonConfig) -> list[ConfigProblem]:
    """Every template in the config that does not parse, at its path, with Jinja's reason and line."""
    environment = BoundedSandbox()
    problems = []
    for name, receiver in config.channels.snmp.items():
        if receiver.message_template is None:
            continue
        try:
            environment.parse(receiver.message_template)
        except jinja2.TemplateSyntaxError as exc:
            problems.append(
                ConfigProblem(f"channels.snmp.{name}.message_template", f"template line {exc.lineno}: {exc.message}")
            )
    return problems
