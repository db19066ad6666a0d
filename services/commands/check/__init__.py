"""`certmon check`: observe and evaluate targets once, print a table or JSON, exit with the Nagios code."""

import argparse
import codecs
import dataclasses
import gc
import io
import sys
from typing import TYPE_CHECKING, BinaryIO, TextIO

from services.commands.check.output import JsonWriter, exit_code, render_table, worst_exit_code
from services.commands.check.run import TargetSyntaxError, check_targets, parse_endpoint
from services.commands.exit_codes import EXIT_UNKNOWN
from services.evaluator.adapters.trust import TrustStoreError
from services.evaluator.bootstrap import build_evaluator
from services.scanner.bootstrap import build_observer
from services.scanner.domain.limits import limits_from
from shared.config import ConfigError, load_app_config
from shared.events import Evaluation, Target
from shared.events.target import Profile
from shared.settings import Settings

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer
    from rich.console import Console


#: The run's caches, held to the end of the process and left there: freeing their thousands of kept certificates
#: one by one would cost more than the rest of the exit. The list holds itself, so clearing this module's globals
#: at exit does not free it either, and the check freezes it out of the collector's last pass.
_KEPT_TO_EXIT: list[object] = []


def _console(*, stderr: bool = False) -> "Console":
    from rich.console import Console  # imported only to print for people: `--json` output never needs it

    return Console(stderr=stderr)


class _TextSink(io.RawIOBase):
    """UTF-8 bytes on to a text stream with no binary layer under it: a program that embeds certmon may set
    `sys.stdout` to a `StringIO` or a notebook's stream."""

    def __init__(self, text: TextIO) -> None:
        super().__init__()
        self._text = text
        self._decoder = codecs.getincrementaldecoder("utf-8")()  # a character may straddle two writes

    def writable(self) -> bool:
        return True

    def write(self, data: "ReadableBuffer") -> int:
        chunk = memoryview(data).tobytes()
        self._text.write(self._decoder.decode(chunk))
        return len(chunk)

    def flush(self) -> None:
        self._text.flush()


def _bulk_stdout() -> BinaryIO:
    """Standard output with a 1 MiB buffer (not closed with it): a bulk check prints megabytes, and 8 KiB writes
    into a pipe wake its reader thousands of times."""
    sys.stdout.flush()
    try:
        return open(sys.stdout.fileno(), "wb", buffering=1 << 20, closefd=False)
    except (OSError, ValueError, io.UnsupportedOperation):  # a stdout without a descriptor (embedded, captured)
        binary = getattr(sys.stdout, "buffer", None)
        return binary if binary is not None else io.BufferedWriter(_TextSink(sys.stdout), buffer_size=1 << 20)


async def check(args: argparse.Namespace, settings: Settings) -> int:
    """Run `certmon check` with parsed arguments; returns the exit code."""
    try:
        config = load_app_config(settings, args.config)
        profile: Profile = "full" if args.full else "expiry"
        targets = [parse_endpoint(t, protocol=args.protocol, sni=args.sni, profile=profile) for t in args.targets]
    except ConfigError as exc:
        _console(stderr=True).print(f"[red]configuration refused[/red] {exc}")
        return EXIT_UNKNOWN
    except TargetSyntaxError as exc:
        _console(stderr=True).print(f"[red]bad target:[/red] {exc}")
        return EXIT_UNKNOWN
    targets += [Target(file=str(path)) for path in args.file]
    if not targets:
        _console(stderr=True).print("[red]nothing to check:[/red] give HOST[:PORT] arguments or --file")
        return EXIT_UNKNOWN
    limits = limits_from(settings, config)
    if args.timeout:
        limits = dataclasses.replace(limits, target_seconds=args.timeout)
    # The check makes no cycles worth collecting before it exits: what exists now (modules, config) is frozen out
    # of the collector's scans, and the collector waits until the evaluations are done. What the check leaves
    # (the memos of thousands of certificates) is frozen too: the collection at interpreter exit would otherwise
    # walk it all, seconds for a directory of distinct certificates.
    gc.freeze()
    gc.disable()
    codes: set[int] = set()
    shown: list[Evaluation] = []
    writer = JsonWriter(_bulk_stdout()) if args.json else None

    def take(evaluation: Evaluation) -> None:
        codes.add(exit_code(evaluation))
        if writer is not None:
            writer.write(evaluation)  # printed as it comes: a bulk check keeps none of them
        else:
            shown.append(evaluation)

    try:
        # The services' own parts, built for the run: one set of caches shared by every target.
        evaluator = build_evaluator(config, extra_ca_files=args.ca_file)
        _KEPT_TO_EXIT.extend((evaluator.caches, _KEPT_TO_EXIT))
        await check_targets(
            targets, take, observer=build_observer(settings, config, limits=limits), evaluator=evaluator
        )
    except TrustStoreError as exc:
        _console(stderr=True).print(f"[red]bad trust store:[/red] {exc}")
        return EXIT_UNKNOWN
    finally:
        gc.freeze()
        gc.enable()
    if writer is not None:
        writer.close()
    else:
        render_table(shown, _console(), explain=args.explain)
    return worst_exit_code(codes)
