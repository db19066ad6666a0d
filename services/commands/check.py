"""`certmon check`: observe and evaluate targets once, print a table or JSON, exit with the Nagios code."""

import argparse
import dataclasses
import gc
import sys

from rich.console import Console

from services.check_output import EXIT_UNKNOWN, render_table, to_json, worst_exit_code
from services.checkrun import TargetSyntaxError, check_targets, parse_endpoint
from services.evaluator.adapters.trust import TrustStoreError
from services.scanner.limits import limits_from, scan_concurrency
from shared.config import ConfigError, load_app_config
from shared.events import Target
from shared.events.target import Profile
from shared.settings import Settings


async def check(args: argparse.Namespace, settings: Settings) -> int:
    """Run `certmon check` with parsed arguments; returns the exit code."""
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
    limits = limits_from(settings, config)
    if args.timeout:
        limits = dataclasses.replace(limits, target_seconds=args.timeout)
    # A bulk check keeps thousands of evaluations until it prints them, and the cyclic collector would scan them
    # all again at every full collection (a tenth of a 10,000-file run). The check makes no cycles worth
    # collecting before it exits: what exists now (modules, config) is frozen out of the scans, and the
    # collector waits until the evaluations are done.
    gc.freeze()
    gc.disable()
    try:
        evaluations = await check_targets(
            targets,
            config=config,
            limits=limits,
            concurrency=scan_concurrency(settings, config),
            extra_ca_files=args.ca_file,
        )
    except TrustStoreError as exc:
        console.print(f"[red]bad trust store:[/red] {exc}")
        return EXIT_UNKNOWN
    finally:
        gc.enable()
    if args.json:
        sys.stdout.flush()
        sys.stdout.buffer.write(to_json(evaluations))
        sys.stdout.buffer.write(b"\n")
    else:
        render_table(evaluations, Console(), explain=args.explain)
    return worst_exit_code(evaluations)
