"""`certmon config validate FILE`: every problem of a certmon.yaml, with its path."""

from pathlib import Path

from rich.console import Console

from shared.config import ConfigError, load_config
from shared.config.secrets import secret_problems
from shared.template_checks import template_problems


def validate(path: Path, *, secrets: bool = False) -> int:
    """Print whether the file is valid (exit 0) or each problem at its path (exit 1); with `secrets`, the
    `*_env` variables and `*_file` files it names must be set and readable too (an init container's check)."""
    console = Console()
    try:
        config = load_config(path)
        if problems := template_problems(config) + (secret_problems(config) if secrets else []):
            raise ConfigError(str(path), problems)
    except ConfigError as exc:
        console.print(f"[red]{exc.source}: {len(exc.problems)} problem(s)[/red]")
        for problem in exc.problems:
            console.print(f"  [bold]{problem.path}[/bold]: {problem.message}")
        return 1
    console.print(
        f"[green]{path}: valid[/green] — {len(config.targets)} targets, {len(config.servers)} servers, "
        f"{len(config.owners)} owners, {len(config.certificates)} certificate rules"
    )
    return 0
