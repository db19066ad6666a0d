"""`certmon dlq list|replay|purge`: the dead letters on the broker `CERTMON_AMQP_URL` names, for an operator.

`list` shows each dead letter (event id, routing key, the queue it failed on, why, attempts, when, how long ago) and
leaves them all in the queue; `replay` sends the selected ones back to the queue each failed on (only that consumer
gets it again); `purge` removes them, after asking unless `--yes`. How the queue is read without losing anything is
in `shared.broker.dead_letters`.

Exit codes: 0 when everything asked was done (an empty dead-letter queue included); 1 when the command cannot start
(no `CERTMON_AMQP_URL`, the broker unreachable or failing), as the other commands; 2 when some of what was asked was
not done: an `--id` no dead letter has, a letter the broker would not take back (it stays), a purge not confirmed.
Arguments the parser refuses exit 3, as every `certmon` command.
"""

import argparse
import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import aio_pika
import aiormq
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from shared.broker.dead_letters import (
    DEAD_LETTER_QUEUE,
    DeadLetter,
    list_dead_letters,
    purge_dead_letters,
    replay_dead_letters,
)
from shared.clock import Clock, utc_now
from shared.logging import redact_text
from shared.settings import Settings

EXIT_DONE, EXIT_CANNOT_START, EXIT_NOT_ALL_DONE = 0, 1, 2
CONNECT_TIMEOUT_SECONDS = 10.0
#: What the client raises when the broker is away or fails (a channel closed under it is a RuntimeError).
_BROKER_ERRORS = (OSError, TimeoutError, RuntimeError, aiormq.exceptions.AMQPError)


async def dlq(
    args: argparse.Namespace, settings: Settings, *, queue: str = DEAD_LETTER_QUEUE, clock: Clock = utc_now
) -> int:
    """Run `certmon dlq list|replay|purge` on the dead-letter queue `queue`; returns the exit code."""
    errors = Console(stderr=True)
    if settings.amqp_url is None:
        errors.print("[red]certmon dlq:[/red] CERTMON_AMQP_URL is not set: the dead letters are on the broker")
        return EXIT_CANNOT_START
    url = settings.amqp_url.get_secret_value()
    try:
        connection = await aio_pika.connect(url, timeout=CONNECT_TIMEOUT_SECONDS)
    except _BROKER_ERRORS as exc:
        errors.print(
            f"[red]certmon dlq:[/red] cannot connect to RabbitMQ at {escape(redact_text(url))}: {exc!r}", soft_wrap=True
        )
        return EXIT_CANNOT_START
    try:
        async with connection:
            if args.dlq_command == "list":
                return await _list(connection, queue, args.limit, as_json=args.json, now=clock())
            if args.dlq_command == "replay":
                return await _replay(connection, queue, args)
            return await _purge(connection, queue, args, now=clock())
    except _BROKER_ERRORS as exc:
        errors.print(f"[red]certmon dlq:[/red] the broker failed: {escape(redact_text(repr(exc)))}", soft_wrap=True)
        return EXIT_CANNOT_START


async def _list(
    connection: aio_pika.abc.AbstractConnection, queue: str, limit: int | None, *, as_json: bool, now: datetime
) -> int:
    letters = await list_dead_letters(connection, queue=queue, limit=limit)
    if as_json:
        print(json.dumps([letter.as_json(now) for letter in letters], indent=2))
    elif letters:
        Console().print(table(letters, now))
    else:
        Console().print(f"no dead letters in {escape(queue)}")
    return EXIT_DONE


async def _replay(connection: aio_pika.abc.AbstractConnection, queue: str, args: argparse.Namespace) -> int:
    wanted = _Selection(args)
    replay = await replay_dead_letters(connection, wanted.select, queue=queue)
    out, errors = Console(), Console(stderr=True)
    out.print(f"replayed {len(replay.replayed)} dead letter(s)")
    for letter in replay.replayed:
        out.print(f"  {_id(letter)} {escape(letter.routing_key)} → {escape(letter.queue or '')}", highlight=False)
    for letter, why in replay.kept:
        errors.print(f"kept {_id(letter)}: {escape(why)}", highlight=False)
    missing = wanted.missing([*replay.replayed, *(letter for letter, _ in replay.kept)])
    return EXIT_NOT_ALL_DONE if replay.kept or missing else EXIT_DONE


async def _purge(
    connection: aio_pika.abc.AbstractConnection, queue: str, args: argparse.Namespace, *, now: datetime
) -> int:
    wanted = _Selection(args)
    out = Console()
    asked: list[DeadLetter] = []

    async def confirm(letters: Sequence[DeadLetter]) -> bool:
        asked.extend(letters)
        if args.yes:
            return True
        out.print(table(letters, now))
        # The letters are held meanwhile; the broker's heartbeats go on while the answer is awaited off the loop.
        answer = await asyncio.to_thread(_ask, f"Purge these {len(letters)} dead letter(s)? [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    purged = await purge_dead_letters(connection, wanted.select, queue=queue, confirm=confirm)
    out.print(f"purged {len(purged)} dead letter(s)")
    for letter in purged:
        out.print(f"  {_id(letter)} {escape(letter.routing_key)} (failed on {escape(letter.queue or '?')})")
    missing = wanted.missing(asked)
    return EXIT_NOT_ALL_DONE if missing or len(purged) < len(asked) else EXIT_DONE


class _Selection:
    """The dead letters `--id`/`--all` and `--queue` select; an `--id` no letter has is reported on stderr."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.ids: set[str] = set(args.ids or ())
        self.all: bool = args.all
        self.queue: str | None = args.queue

    def select(self, letter: DeadLetter) -> bool:
        """Whether the arguments select this letter."""
        chosen = self.all or letter.event_id in self.ids
        return chosen and (self.queue is None or letter.queue == self.queue)

    def missing(self, found: Sequence[DeadLetter]) -> list[str]:
        """The `--id`s none of `found` has, each said on stderr."""
        missing = sorted(self.ids - {letter.event_id for letter in found})
        errors = Console(stderr=True)
        for event_id in missing:
            where = f" failed on {self.queue}" if self.queue else ""
            errors.print(f"no dead letter{escape(where)} with id {escape(event_id)}", highlight=False)
        return missing


def table(letters: Sequence[DeadLetter], now: datetime) -> Table:
    """The dead letters as a table, one row each, in queue order."""
    rows = Table("routing key", "failed on", "reason", "attempts", "failed at", "age")
    rows.columns.insert(0, Column("event id", no_wrap=True))  # an id is copied into `--id`: never broken
    for letter in letters:
        rows.add_row(
            _id(letter),
            escape(letter.routing_key),
            escape(letter.queue or "?"),
            escape(letter.reason),
            "?" if letter.attempts is None else str(letter.attempts),
            "?" if letter.failed_at is None else f"{letter.failed_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC",
            _age(letter.age(now)),
        )
    return rows


def _id(letter: DeadLetter) -> str:
    return escape(letter.event_id or "(no id)")


def _age(age: timedelta | None) -> str:
    """An age in its two largest units: `3d 4h`, `12m 5s`."""
    if age is None:
        return "?"
    seconds = max(0, int(age.total_seconds()))
    parts = [(seconds // 86400, "d"), (seconds % 86400 // 3600, "h"), (seconds % 3600 // 60, "m"), (seconds % 60, "s")]
    shown = [f"{value}{unit}" for value, unit in parts if value][:2]
    return " ".join(shown) or "0s"


def _ask(prompt: str) -> str:
    """The operator's answer; no answer (stdin closed) is no."""
    try:
        return input(prompt)
    except EOFError:
        return ""
