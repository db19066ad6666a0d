"""The `certmon` command: `check`, `run`, `config validate`, and one command per service.

Exit codes: `check` follows the Nagios plugin convention (0 ok, 1 warning, 2 critical, 3 unknown; bad
arguments are unknown too). Other commands exit 0 on success, 1 when the configuration is refused or the
infrastructure cannot start.
"""

import argparse
import asyncio
import contextlib
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import structlog
from rich.console import Console

from services.check_output import EXIT_UNKNOWN, render_table, to_json, worst_exit_code
from services.checkrun import TargetSyntaxError, check_targets, parse_endpoint
from services.composition import START_ORDER, build_services
from services.scanner import ProbeLimits
from shared.clock import utc_now
from shared.config import CertmonConfig, ConfigError, load_config
from shared.events import Target
from shared.events.target import Profile
from shared.lifecycle import ShutdownSignal, start_all, stop_all
from shared.logging import configure_logging
from shared.runtime import RuntimeConfigError, infrastructure, load_app_config
from shared.settings import Settings

log = structlog.get_logger(__name__)


class _Parser(argparse.ArgumentParser):
    """Argument errors exit 3 (UNKNOWN), so a typo in a monitoring setup never reads as 'critical'."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_UNKNOWN, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="certmon", description="Watch TLS certificates and tell their owners before they break.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = sub.add_parser("check", help="scan and evaluate targets once; exit 0 ok, 1 warning, 2 critical, 3 unknown")
    check.add_argument("targets", nargs="*", metavar="HOST[:PORT]", help="endpoints to check (default port 443)")
    check.add_argument("--file", action="append", default=[], type=Path, help="a certificate file (PEM or DER)")
    check.add_argument("--json", action="store_true", help="print the evaluation object(s) as JSON")
    check.add_argument("--explain", action="store_true", help="list every finding and grade cap in words")
    check.add_argument("--ca-file", action="append", default=[], type=Path, help="extra trusted CA certificates")
    check.add_argument("--config", type=Path, help="certmon.yaml for trust, thresholds and policy")
    check.add_argument("--sni", help="server name to send (default: the host)")
    check.add_argument("--protocol", choices=["tls", "smtp", "imap", "pop3", "ftp", "ldap", "xmpp", "postgres"])
    check.add_argument("--timeout", type=float, default=None, help="seconds per target (default 20)")
    check.add_argument("--full", action="store_true", help="also enumerate protocol versions and cipher suites")

    run = sub.add_parser("run", help="run all five services in one process")
    run.add_argument("--config", type=Path, help="certmon.yaml (default: $CERTMON_CONFIG)")
    run.add_argument("--demo", action="store_true", help="also serve local demo endpoints and watch them")
    run.add_argument("--exit-after", type=float, default=None, metavar="SECONDS", help="stop after this long")

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True, parser_class=_Parser)
    validate = config_sub.add_parser("validate", help="check a certmon.yaml and explain every error")
    validate.add_argument("file", type=Path)

    for name in START_ORDER:
        one = sub.add_parser(name, help=f"run the {name} service alone (needs CERTMON_AMQP_URL and DATABASE_URL)")
        one.add_argument("--config", type=Path, help="certmon.yaml (default: $CERTMON_CONFIG)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `certmon` console script."""
    args = _parser().parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        if args.command == "check":
            return asyncio.run(_check(args, settings))
        if args.command == "config":
            return _validate(args.file)
        config = load_app_config(settings, args.config)
        if args.command == "run":
            asyncio.run(_run(settings, config, START_ORDER, demo=args.demo, exit_after=args.exit_after))
        else:
            asyncio.run(_run(settings, config, (args.command,), demo=False, exit_after=None, embedded=False))
    except ConfigError as exc:
        Console(stderr=True).print(f"[red]configuration refused[/red] {exc}")
        return 1 if args.command != "check" else EXIT_UNKNOWN
    except RuntimeConfigError as exc:
        Console(stderr=True).print(f"[red]cannot start:[/red] {exc}")
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def _validate(path: Path) -> int:
    console = Console()
    try:
        config = load_config(path)
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


async def _check(args: argparse.Namespace, settings: Settings) -> int:
    console = Console(stderr=True)
    try:
        config = load_app_config(settings, args.config)
        profile: Profile = "full" if args.full else "expiry"
        targets = [parse_endpoint(t, protocol=args.protocol, sni=args.sni, profile=profile) for t in args.targets]
    except ConfigError as exc:
        console.print(f"[red]configuration refused[/red] {exc}")
        return EXIT_UNKNOWN
    except TargetSyntaxError as exc:
        console.print(f"[red]bad target:[/red] {exc}")
        return EXIT_UNKNOWN
    targets += [Target(file=str(path)) for path in args.file]
    if not targets:
        console.print("[red]nothing to check:[/red] give HOST[:PORT] arguments or --file")
        return EXIT_UNKNOWN
    limits = ProbeLimits(target_seconds=args.timeout) if args.timeout else None
    evaluations = await check_targets(
        targets, config=config, extra_ca_files=args.ca_file, concurrency=settings.scan_concurrency, limits=limits
    )
    if args.json:
        print(to_json(evaluations))
    else:
        render_table(evaluations, Console(), explain=args.explain)
    return worst_exit_code(evaluations)


async def _run(
    settings: Settings,
    config: CertmonConfig,
    names: Sequence[str],
    *,
    demo: bool,
    exit_after: float | None,
    embedded: bool = True,
) -> None:
    console = Console(stderr=True)
    async with contextlib.AsyncExitStack() as stack:
        shutdown = stack.enter_context(ShutdownSignal())
        if demo:
            from services.demo.estate import demo_estate

            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="certmon-demo-")))
            config, ports = await stack.enter_async_context(
                demo_estate(
                    scratch / "endpoints",
                    now=utc_now(),
                    base=config.model_dump(mode="json", by_alias=True, exclude_defaults=True),
                )
            )
            if settings.database_url is None:  # a fresh embedded database, so old demo runs leave nothing behind
                settings = settings.model_copy(update={"data_dir": scratch / "data"})
            console.print(f"[bold]demo endpoints[/bold] on 127.0.0.1: {ports}")
        stateless = set(names) == {"evaluator"}  # the evaluator alone keeps no state
        infra = await stack.enter_async_context(
            infrastructure(settings, allow_embedded=embedded, needs_database=not stateless)
        )
        services = build_services(names, settings, config, bus=infra.bus, pool=infra.pool)
        await start_all(services)
        try:
            mode = "in-memory bus" if infra.embedded_bus else "RabbitMQ"
            db = "embedded PostgreSQL" if infra.embedded_database else "PostgreSQL"
            console.print(
                f"[green]certmon running[/green] {', '.join(s.name for s in services)} on {mode} and {db}; "
                f"{len(config.targets)} targets"
                + (f"; dashboard http://{settings.http_host}:{settings.http_port}/" if "reporter" in names else "")
            )
            await shutdown.wait(exit_after)
        finally:
            await stop_all(services)


if __name__ == "__main__":
    sys.exit(main())
