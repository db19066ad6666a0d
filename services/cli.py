"""The `certmon` command: `check`, `run`, `report`, `config validate`, `dlq`, and one command per service.

Exit codes: `check` follows the Nagios plugin convention (0 ok, 1 warning, 2 critical, 3 unknown; bad
arguments are unknown too). Other commands exit 0 on success, 1 when the configuration is refused or the
infrastructure cannot start; `dlq` exits 2 when part of what was asked was not done (an unknown id, a letter kept).
Bad deployment input (a setting, a secret, the config file) stops a command before it
connects to anything, with one line on stderr naming what is wrong and never a secret's value.
"""

import argparse
import asyncio
import gc
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from services import START_ORDER
from services.commands.exit_codes import EXIT_UNKNOWN

if TYPE_CHECKING:
    from shared.settings import Settings


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
    check.add_argument(
        "--explain",
        action="store_true",
        help="list every finding and grade cap in words, and how an incomplete chain was completed",
    )
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

    _report_parser(sub.add_parser("report", help="build a report now from the history and write it to the bucket"))

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True, parser_class=_Parser)
    validate = config_sub.add_parser("validate", help="check a certmon.yaml and explain every error")
    validate.add_argument("file", type=Path)
    validate.add_argument(
        "--secrets",
        action="store_true",
        help="also check that the secrets it names (*_env variables, *_file files) are set and readable",
    )

    _dlq_parser(sub.add_parser("dlq", help="list, replay or purge the dead letters (messages no service could handle)"))

    snmp = sub.add_parser("snmp", help="SNMP tools")
    snmp_sub = snmp.add_subparsers(dest="snmp_command", required=True, parser_class=_Parser)
    mib = snmp_sub.add_parser("mib", help="print CERTMON-MIB, the MIB of certmon's traps, for a trap receiver")
    mib.add_argument(
        "--enterprise-oid",
        metavar="OID",
        help="the arc under 1.3.6.1.4.1 the receivers' enterprise_oid names (default: RFC 5612's example)",
    )

    for name in START_ORDER:
        one = sub.add_parser(name, help=f"run the {name} service alone (needs CERTMON_AMQP_URL and DATABASE_URL)")
        one.add_argument("--config", type=Path, help="certmon.yaml (default: $CERTMON_CONFIG)")
    return parser


def _report_parser(report: argparse.ArgumentParser) -> None:
    kinds = report.add_subparsers(dest="report_kind", required=True, parser_class=_Parser)
    helps = {
        "daily": "the daily status report (default: today's)",
        "weekly": "the weekly trend report (default: last ISO week)",
        "monthly": "the monthly compliance report (default: last month)",
    }
    parsers = [kinds.add_parser(kind, help=text) for kind, text in helps.items()]
    custom = kinds.add_parser("custom", help="a custom report named in certmon.yaml, or the one the filter selects")
    custom.add_argument("name", nargs="?", metavar="NAME", help="a report under reports.custom in certmon.yaml")
    for name in ("owner", "server", "tag", "level", "grade", "issuer"):
        custom.add_argument(f"--{name}", action="append", default=[], help=f"select by {name} (repeat for any of)")
    custom.add_argument("--days-left-min", type=float, metavar="DAYS", help="at least this many days left")
    custom.add_argument("--days-left-max", type=float, metavar="DAYS", help="at most this many days left")
    for parser in [*parsers, custom]:
        parser.add_argument("--period", metavar="YYYY-MM-DD|YYYY-Www|YYYY-MM", help="the day, ISO week or month")
        parser.add_argument("--format", action="append", metavar="FORMAT", help="html, csv, json, pdf (repeatable)")
        parser.add_argument("--config", type=Path, help="certmon.yaml (default: $CERTMON_CONFIG)")
        parser.add_argument("--force", action="store_true", help="write a published period again (not re-announced)")


def _dlq_parser(dlq: argparse.ArgumentParser) -> None:
    actions = dlq.add_subparsers(dest="dlq_command", required=True, parser_class=_Parser)
    listing = actions.add_parser("list", help="show the dead letters, why and where each failed; removes none")
    listing.add_argument("--limit", type=int, metavar="N", help="show the first N only")
    listing.add_argument("--json", action="store_true", help="print them as JSON")
    replay = actions.add_parser("replay", help="send dead letters back to the queue each failed on")
    purge = actions.add_parser("purge", help="remove dead letters (asks first unless --yes)")
    for parser in (replay, purge):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--id", action="append", dest="ids", metavar="EVENT_ID", help="this event (repeatable)")
        which.add_argument("--all", action="store_true", help="every dead letter")
        parser.add_argument("--queue", metavar="QUEUE", help="only those that failed on this queue")
    purge.add_argument("--yes", action="store_true", help="do not ask")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `certmon` console script."""
    args = _parser().parse_args(argv)
    # Loading the modules allocates hundreds of thousands of objects that live until exit; the cyclic collector
    # would scan them again and again while they load (a tenth of `certmon check`'s start). It resumes once the
    # command's modules are in, with what exists by then frozen out of its scans.
    gc.disable()
    try:
        return _dispatch(args)
    finally:
        gc.enable()


def _refused(reason: str) -> int:
    """Print why the command cannot start as one line (a log collector keeps lines apart), and return 1."""
    print("certmon: " + " ".join(reason.split()), file=sys.stderr)
    return 1


def _settings() -> "Settings | None":
    """The settings, or None once one line on stderr said what is wrong: every bad variable with its reason,
    never its value (it may be a secret)."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from shared.settings import SECRETS_DIR, Settings

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            settings = Settings()
        # pydantic-settings only warns about a secret that is a directory or points outside its folder.
        if problems := [str(w.message) for w in caught if "secret file" in str(w.message)]:
            _refused("settings refused: " + "; ".join(problems))
            return None
        return settings
    except ValidationError as exc:
        reasons = []
        for error in exc.errors():
            name = "CERTMON_" + "__".join(str(part) for part in error["loc"]).upper()
            reasons.append(f"{name}: {error['msg']}")
        _refused("settings refused: " + "; ".join(reasons))
    except SettingsError as exc:  # a list or mapping that is not JSON, from a variable or a secret file
        field = re.search(r'field "([^"]+)"', str(exc))
        name = "CERTMON_" + field.group(1).upper() if field else "a setting"
        # The cause is the file's bytes that are not UTF-8, or the text that is not JSON.
        why = "not UTF-8 text" if isinstance(exc.__cause__, UnicodeDecodeError) else 'not valid JSON, e.g. ["a", "b"]'
        _refused(f"settings refused: {name} (or its file in {SECRETS_DIR}): {why}")
    except OSError as exc:
        _refused(f"settings refused: cannot read {exc.filename or SECRETS_DIR}: {exc.strerror}")
    except UnicodeDecodeError:
        _refused(f"settings refused: a file in {SECRETS_DIR} is not UTF-8 text")
    return None


def _modules_loaded() -> None:
    gc.freeze()
    gc.enable()


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "snmp":
        from services.notifier.adapters.snmp import mib_text

        try:
            print(mib_text() if args.enterprise_oid is None else mib_text(args.enterprise_oid), end="")
        except ValueError as exc:
            print(f"certmon: {exc}", file=sys.stderr)
            return 1
        return 0
    from shared.config import ConfigError, ConfigProblem, load_app_config
    from shared.logging import configure_logging

    settings = _settings()
    if settings is None:
        return EXIT_UNKNOWN if args.command == "check" else 1
    # A one-shot check prints its verdict; progress logs would only clutter a monitoring plugin's output.
    quiet = args.command in ("check", "config", "report", "dlq") and "log_level" not in settings.model_fields_set
    configure_logging("warning" if quiet else settings.log_level, settings.log_format)
    # `certmon check` runs in monitoring loops: each command's modules are imported only when it runs.
    if args.command == "check":
        from services.commands.check import check

        _modules_loaded()  # the check pauses the collector again while it evaluates
        return asyncio.run(check(args, settings))
    if args.command == "config":
        from services.commands.validate import validate

        _modules_loaded()
        try:
            return validate(args.file, secrets=args.secrets)
        except UnicodeDecodeError:  # the loader reports what it cannot open, not what it cannot decode
            return _refused(f"{args.file}: not UTF-8 text")
    if args.command == "report":
        from services.commands.report import report

        _modules_loaded()
        return asyncio.run(report(args, settings))
    if args.command == "dlq":
        from services.commands.dlq import dlq

        _modules_loaded()
        return asyncio.run(dlq(args, settings))
    from services.commands.run import run
    from shared.config.secrets import secret_problems
    from shared.settings import RuntimeConfigError

    _modules_loaded()

    try:
        try:
            config = load_app_config(settings, args.config)
        except UnicodeDecodeError:
            raise ConfigError(
                str(args.config or settings.config), [ConfigProblem("(file)", "not UTF-8 text")]
            ) from None
        # Only the notifier reads the channels' secrets; the other services start without them.
        if args.command in ("run", "notifier") and (problems := secret_problems(config)):
            raise ConfigError(str(args.config or settings.config or "certmon.yaml"), problems)
        if args.command == "run":
            asyncio.run(run(settings, config, START_ORDER, demo=args.demo, exit_after=args.exit_after))
        else:
            asyncio.run(run(settings, config, (args.command,), demo=False, exit_after=None, embedded=False))
    except ConfigError as exc:
        reasons = "; ".join(str(problem) for problem in exc.problems)
        return _refused(f"configuration refused: {exc.source}: {reasons}")
    except RuntimeConfigError as exc:
        return _refused(f"cannot start: {exc}")
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
