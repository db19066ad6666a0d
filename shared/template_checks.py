"""Syntax checks of the Jinja2 templates a `certmon.yaml` carries (SNMP receivers' `message_template`).

They live outside `shared.config` because the schema is imported by every service's domain, which may import
no template library; `certmon config validate` and the notifier's start run them on a loaded config.
"""

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from shared.config import CertmonConfig, ConfigProblem


def template_problems(config: CertmonConfig) -> list[ConfigProblem]:
    """Every template in the config that does not parse, at its path, with Jinja's reason and line."""
    environment = ImmutableSandboxedEnvironment()
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
