"""The fault harness: the five services as processes (two scanners, two evaluators) against a RabbitMQ node and
a PostgreSQL cluster of the run's own, reached through TCP proxies; an SMTP sink, snmptrapd and a webhook sink
recording every delivery; certificates changing under the scanners; faults injected on a schedule drawn from a
seed; then, once the faults stop and the system has drained, the books (`books.py`) and a table.

The run, in order:
1. start the nodes, proxies, sinks and estate, declare the tap, start the services and wait until all are ready;
2. for `fault_seconds` (and until every kind has been injected once, in a seeded order, however slow the
   machine), change a certificate every `change_every` seconds and inject one fault at a time; after each, time
   how long until every service is ready. `kill -9 mid-delivery` holds the webhook sink's answer and kills the
   notifier while a call waits: a delivery made and not yet recorded;
3. put every target in a final state (ok or warning: no reminders, whose cadence would keep the books moving)
   and wait until every target was observed after it and the alarm side has been quiet for `quiet_seconds`
   (outboxes published, no delivery retrying, nothing new in the history or at the sinks);
4. check readiness, stop the scanners (the only source of work) and wait until every other queue is empty;
5. keep the books, stop the rest.

The seed fixes the schedule (which fault, which process, which certificate, the waits), not the interleaving
with the services' own timing: a run is repeated with the same seed, and a finding confirmed by repeating it.
"""

import asyncio
import contextlib
import datetime as dt
import os
import random
import signal
import statistics
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from shared.broker.dead_letters import DEAD_LETTER_QUEUE
from tests.support.faults.books import (
    TAP_QUEUE,
    Books,
    Recipients,
    dead_letter_lines,
    declare_tap,
    keep_books,
    published_alarm_events,
    read_tables,
    take_messages,
)
from tests.support.faults.estate import Estate, State, running_estate
from tests.support.faults.proxy import TcpProxy
from tests.support.postgres_node import PostgresNode, postgres_node
from tests.support.rabbitmq_node import RabbitNode
from tests.support.service_processes import ServiceProcesses
from tests.support.smtp import SmtpServer, start_smtp_server
from tests.support.snmptrapd import Snmptrapd, start_snmptrapd
from tests.support.webhook_sink import WebhookSink, start_webhook_sink

#: Two scanners and two evaluators, as a scaled deployment runs them; one of each other service.
PROCESSES = ("scanner", "scanner", "evaluator", "evaluator", "alarmer", "notifier", "reporter")
KILL, MID_DELIVERY, TERM, BROKER, DATABASE, BROKER_CUT, DATABASE_CUT = (
    "kill -9",
    "kill -9 mid-delivery",  # the notifier, while the webhook sink holds a call unanswered
    "SIGTERM",
    "broker restart",
    "database restart",
    "broker connections cut",
    "database connections cut",
)
FAULT_KINDS = (KILL, MID_DELIVERY, TERM, BROKER, DATABASE, BROKER_CUT, DATABASE_CUT)
SCAN_REQUESTS = "certmon.scanner.scan-requests"
COMMUNITY = "certmon-faults"
RECIPIENTS = Recipients(
    emails=("ops1@faults.test", "ops2@faults.test"),
    snmp="noc",
    webhook="hook",
    from_address="certmon@faults.test",
)


@dataclass(frozen=True)
class Options:
    """What a run does; the defaults are the CI's short run."""

    seed: int = 1
    fault_seconds: float = 70.0
    files: int = 10
    endpoints: int = 2
    scan_interval: str = "3s"
    reminder_cadence: str = "10s"  # of critical alarms
    change_every: tuple[float, float] = (0.5, 2.5)
    fault_every: tuple[float, float] = (1.0, 4.0)
    kinds: tuple[str, ...] = FAULT_KINDS
    quiet_seconds: float = 10.0
    drain_seconds: float = 120.0
    ready_seconds: float = 60.0


@dataclass
class Fault:
    """One injected fault: what, on what, when it began and ended (seconds into the fault phase), and the seconds
    from its end until every service was ready again (None: not within `ready_seconds`)."""

    kind: str
    detail: str
    began: float
    ended: float
    recovered_after: float | None


@dataclass
class Outcome:
    """A run's result: the faults, the books, and what else went wrong (a process that did not stop cleanly,
    a drain that did not finish, a service not ready at the end)."""

    options: Options
    workdir: Path
    faults: list[Fault] = field(default_factory=list)
    changes: int = 0
    books: Books | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """No loss, no duplicate, nothing left over, every fault recovered from, nothing else wrong."""
        recovered = all(fault.recovered_after is not None for fault in self.faults)
        return self.books is not None and self.books.clean and recovered and not self.notes

    def recovery(self, kind: str) -> list[float]:
        """Seconds to ready after each fault of `kind` (those recovered from)."""
        return [f.recovered_after for f in self.faults if f.kind == kind and f.recovered_after is not None]

    def table(self) -> str:
        """The accounting, as a plain-text table and lists of what went wrong."""
        return format_outcome(self)


class Harness:
    """One run's moving parts; `run()` drives them."""

    def __init__(
        self,
        options: Options,
        workdir: Path,
        *,
        rabbit: RabbitNode,
        postgres: PostgresNode,
        proxies: tuple[TcpProxy, TcpProxy],
        sinks: tuple[SmtpServer, Snmptrapd, WebhookSink],
        estate: Estate,
        services: ServiceProcesses,
    ) -> None:
        self.options, self.workdir = options, workdir
        self.rabbit, self.postgres = rabbit, postgres
        self.amqp_proxy, self.db_proxy = proxies
        self.smtp, self.trapd, self.webhooks = sinks
        self.estate, self.services = estate, services
        self.outcome = Outcome(options, workdir)
        self._changes = random.Random(f"{options.seed}/changes")
        self._faults = random.Random(f"{options.seed}/faults")
        self._clock_zero = time.monotonic()

    def _now(self) -> float:
        return time.monotonic() - self._clock_zero

    async def run(self) -> Outcome:
        """Phases 2 to 5 (the services are started and ready)."""
        self._clock_zero = time.monotonic()
        changing = asyncio.create_task(self._change_certificates())
        try:
            await self._inject_faults()
        finally:
            changing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await changing
        final_at = await self._settle_final_states()
        await self._drain(final_at)
        codes = await self.services.readiness()
        if codes != [200] * len(codes):
            self.outcome.notes.append(f"not every service ready after the drain: {codes}")
        await self._stop_scanners()
        queued = await self._wait_for_empty_queues()
        await self._keep_books(queued)
        self.outcome.changes = self.estate.changes
        return self.outcome

    async def _change_certificates(self) -> None:
        rng = self._changes
        while True:
            await asyncio.sleep(rng.uniform(*self.options.change_every))
            target = rng.choice(self.estate.targets)
            state: State = rng.choice([s for s in target.states if s != target.state])
            self.estate.put(target, state)

    async def _inject_faults(self) -> None:
        rng = self._faults
        first_round = list(self.options.kinds)
        rng.shuffle(first_round)
        while first_round or self._now() < self.options.fault_seconds:  # every kind once, however slow
            kind = first_round.pop(0) if first_round else rng.choice(self.options.kinds)
            await self._inject(kind)
            await asyncio.sleep(rng.uniform(*self.options.fault_every))

    async def _inject(self, kind: str) -> None:
        rng, began = self._faults, self._now()
        if kind == MID_DELIVERY:
            detail = await self._kill_notifier_mid_delivery()
        elif kind in (KILL, TERM):
            index = rng.randrange(len(self.services.slots))
            signum = signal.SIGKILL if kind == KILL else signal.SIGTERM
            code = await self.services.signal_one(index, signum)
            detail = f"{self.services.slots[index].name}[{index}] exited {code}"
            if kind == TERM and code != 0:
                self.outcome.notes.append(f"SIGTERM at {began:.1f} s: {detail} (not 0)")
            await asyncio.sleep(rng.uniform(0.0, 2.0))
            await self.services.start_one(index)
        elif kind == BROKER:
            down = rng.uniform(1.0, 5.0)
            await asyncio.to_thread(self.rabbit.stop)
            await asyncio.sleep(down)
            await asyncio.to_thread(self.rabbit.start)
            detail = f"down {down:.1f} s"
        elif kind == DATABASE:
            mode, down = rng.choice(["fast", "immediate"]), rng.uniform(1.0, 4.0)
            await asyncio.to_thread(self.postgres.stop, mode)
            await asyncio.sleep(down)
            await asyncio.to_thread(self.postgres.start)
            detail = f"stop -m {mode}, down {down:.1f} s"
        else:
            proxy = self.amqp_proxy if kind == BROKER_CUT else self.db_proxy
            refuse = rng.uniform(0.0, 3.0)
            cut = proxy.cut_all(refuse_for=refuse)
            await asyncio.sleep(refuse)
            detail = f"{cut} connections, refused {refuse:.1f} s"
        ended = self._now()
        recovered = await self._time_to_ready()
        self.outcome.faults.append(Fault(kind, detail, began, ended, recovered))

    async def _kill_notifier_mid_delivery(self) -> str:
        """Hold the webhook sink's answers, wait for a call to arrive (a delivery sent and not yet recorded), kill
        the notifier, let the sink answer again and restart the notifier."""
        index = next(i for i, slot in enumerate(self.services.slots) if slot.name == "notifier")
        sink, seen = self.webhooks, len(self.webhooks.received)
        sink.release.clear()
        sink.hang = 60.0
        try:
            deadline = time.monotonic() + 30
            while len(sink.received) == seen and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            code = await self.services.signal_one(index, signal.SIGKILL)
        finally:
            sink.hang = 0.0
            sink.release.set()
        await asyncio.sleep(self._faults.uniform(0.0, 2.0))
        await self.services.start_one(index)
        held = "a webhook call held" if len(sink.received) > seen else "no webhook call within 30 s"
        return f"notifier[{index}] exited {code}, {held}"

    async def _time_to_ready(self) -> float | None:
        try:
            return await self.services.wait_until_ready(self.options.ready_seconds)
        except AssertionError:
            return None

    async def _settle_final_states(self) -> dt.datetime:
        """Put every target in its final state; returns the time after the last change."""
        for target in self.estate.targets:
            final: State = self._changes.choice(["ok", "warning"])
            self.estate.put(target, final)
        await asyncio.sleep(0.1)
        return dt.datetime.now(dt.UTC)

    async def _quiet_signature(self, final_at: dt.datetime) -> tuple[int, ...] | None:
        """What must stop moving for the alarm side to be drained, or None while it cannot be (a target not yet
        observed after its final change, an outbox not published, a delivery retrying, the database away)."""
        try:
            conn = await asyncpg.connect(self.postgres.url, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return None
        try:
            observed = await conn.fetchval(
                "SELECT count(*) FROM alarmer.target_health WHERE last_observed_at > $1", final_at
            )
            pending = await conn.fetchval(
                "SELECT (SELECT count(*) FROM notifier.deliveries WHERE status = 'retrying') + "
                + " + ".join(
                    f"(SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL)"
                    for schema in ("scanner", "alarmer", "notifier", "reporter")
                )
            )
            history = await conn.fetchval("SELECT count(*) FROM alarmer.alarm_history")
            reporter = await conn.fetchval("SELECT count(*) FROM reporter.alarm_events")
        finally:
            await conn.close()
        if observed < len(self.estate.targets) or pending:
            return None
        return (history, reporter, len(self.smtp.received), len(self.trapd.traps()), len(self.webhooks.received))

    async def _drain(self, final_at: dt.datetime) -> None:
        deadline = time.monotonic() + self.options.drain_seconds
        last: tuple[int, ...] | None = None
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            signature = await self._quiet_signature(final_at)
            if signature is None or signature != last:
                last, quiet_since = signature, time.monotonic()
            elif time.monotonic() - quiet_since >= self.options.quiet_seconds:
                return
            await asyncio.sleep(1.0)
        self.outcome.notes.append(f"the system did not drain within {self.options.drain_seconds:.0f} s")

    async def _stop_scanners(self) -> None:
        for index, slot in enumerate(self.services.slots):
            if slot.name == "scanner":
                code = await self.services.signal_one(index, signal.SIGTERM)
                if code != 0:
                    self.outcome.notes.append(f"scanner[{index}] exited {code} on SIGTERM (None: killed after 40 s)")

    async def _wait_for_empty_queues(self) -> dict[str, tuple[int, int]]:
        """With the scanners stopped nothing new enters: every queue but the scan requests (and the tap and the
        dead letters, read by the books) empties. Returns those that did not within `drain_seconds`."""
        ignored = {SCAN_REQUESTS, TAP_QUEUE, DEAD_LETTER_QUEUE}
        deadline = time.monotonic() + self.options.drain_seconds
        while True:
            counts = await asyncio.to_thread(self.rabbit.queue_counts)
            left = {name: count for name, count in counts.items() if name not in ignored and any(count)}
            if not left or time.monotonic() > deadline:
                return left
            await asyncio.sleep(1.0)

    async def _keep_books(self, queued: dict[str, tuple[int, int]]) -> None:
        events = published_alarm_events(await take_messages(self.rabbit.url, TAP_QUEUE))
        dead = await dead_letter_lines(self.rabbit.url)
        tables = await read_tables(self.postgres.url)
        self.outcome.books = keep_books(
            estate=self.estate,
            tables=tables,
            events=events,
            dead_letters=dead,
            queued=queued,
            recipients=RECIPIENTS,
            smtp=self.smtp,
            trapd=self.trapd,
            webhooks=self.webhooks,
        )


def write_config(path: Path, estate: Estate, options: Options, *, smtp: int, snmp: int, webhook: int) -> Path:
    """The run's `certmon.yaml`: one owner reached by email (two addresses, one message each), SNMP and a
    webhook; the default thresholds; reminders of critical alarms every `reminder_cadence`."""
    emails = ", ".join(RECIPIENTS.emails)
    targets = "".join(f"  - {target.config_entry(options.scan_interval)}\n" for target in estate.targets)
    path.write_text(
        f"""trust: {{ca_files: [{estate.ca_file}]}}
defaults:
  owner: ops
  interval: {options.scan_interval}
  reminders: {{critical: {options.reminder_cadence}, warning: "off", info: "off"}}
channels:
  email: {{host: 127.0.0.1, port: {smtp}, starttls: false, from: {RECIPIENTS.from_address}, timeout: 10s}}
  snmp:
    {RECIPIENTS.snmp}: {{host: 127.0.0.1, port: {snmp}, version: v2c, community_env: FAULTS_SNMP_COMMUNITY}}
  webhook:
    {RECIPIENTS.webhook}: {{url: "http://127.0.0.1:{webhook}/hook", format: cloudevents, timeout: 10s}}
owners:
  ops:
    email: [{emails}]
    delivery: individual
    snmp: [{RECIPIENTS.snmp}]
    webhook: [{RECIPIENTS.webhook}]
targets:
{targets}"""
    )
    return path


def service_environment(workdir: Path, *, amqp_url: str, database_url: str, config: Path) -> dict[str, str]:
    """The services' environment: this process's without its `CERTMON_*` (a test's own URLs), and the run's."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CERTMON_")}
    return env | {
        "CERTMON_AMQP_URL": amqp_url,
        "CERTMON_DATABASE_URL": database_url,
        "CERTMON_CONFIG": str(config),
        "CERTMON_SCHEDULER_TICK_SECONDS": "1",
        "CERTMON_LOG_FORMAT": "json",
        "CERTMON_DATA_DIR": str(workdir / "data"),
        "CERTMON_REPORTS_URL": str(workdir / "reports"),
        "CERTMON_LINK_SECRET": "faults-link-secret-0123456789abcdef",
        "FAULTS_SNMP_COMMUNITY": COMMUNITY,
    }


@contextlib.asynccontextmanager
async def _proxy(upstream_port: int) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(upstream_port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


async def run_faults(options: Options, workdir: Path, *, progress: Callable[[str], None] = print) -> Outcome:
    """Set everything up in `workdir`, run, keep the books, tear everything down; returns the outcome."""
    started = time.monotonic()
    rabbit = RabbitNode(workdir / "rabbitmq")
    lifetime = options.fault_seconds + options.drain_seconds * 2 + 600
    with contextlib.ExitStack() as stack:
        stack.callback(rabbit.stop)
        await asyncio.to_thread(rabbit.start)
        postgres = stack.enter_context(postgres_node())
        smtp = stack.enter_context(start_smtp_server())
        webhooks = stack.enter_context(start_webhook_sink())
        trapd = stack.enter_context(start_snmptrapd(workdir / "snmptrapd", community=COMMUNITY, lifetime=lifetime))
        await declare_tap(rabbit.url)
        async with (
            _proxy(rabbit.port) as amqp_proxy,
            _proxy(postgres.port) as db_proxy,
            running_estate(workdir / "estate", files=options.files, endpoints=options.endpoints) as estate,
        ):
            config = write_config(
                workdir / "certmon.yaml", estate, options, smtp=smtp.port, snmp=trapd.port, webhook=webhooks.port
            )
            env = service_environment(
                workdir,
                amqp_url=f"amqp://guest:guest@127.0.0.1:{amqp_proxy.port}/",
                database_url=f"postgresql://postgres@127.0.0.1:{db_proxy.port}/postgres",
                config=config,
            )
            (workdir / "logs").mkdir(parents=True, exist_ok=True)
            services = ServiceProcesses(workdir / "logs", env, PROCESSES)
            await services.start()
            try:
                await services.wait_until_ready(120)
                progress(f"ready after {time.monotonic() - started:.0f} s; faults for {options.fault_seconds:.0f} s")
                harness = Harness(
                    options,
                    workdir,
                    rabbit=rabbit,
                    postgres=postgres,
                    proxies=(amqp_proxy, db_proxy),
                    sinks=(smtp, trapd, webhooks),
                    estate=estate,
                    services=services,
                )
                outcome = await harness.run()
            finally:
                running = [slot.running for slot in services.slots]
                codes = await services.stop()
            outcome.notes += [
                f"{slot.name}[{index}] exited {code} on the final SIGTERM (None: killed after 40 s)"
                for index, (slot, code, was_running) in enumerate(zip(services.slots, codes, running, strict=True))
                if was_running and code != 0
            ]
    outcome.seconds = time.monotonic() - started
    return outcome


def format_outcome(outcome: Outcome) -> str:
    """The accounting table and the lists of what went wrong."""
    books = outcome.books
    lines = [f"seed {outcome.options.seed}, {outcome.seconds:.0f} s, logs in {outcome.workdir}"]
    if books is not None:
        lines += [
            f"events: {outcome.changes} certificate changes, {books.evaluations} evaluations, "
            f"{len(books.alarm_events)} alarm transitions published",
            "",
            f"{'effect':<26} {'expected':>9} {'delivered':>9} {'lost':>6} {'duplicated':>10} {'unexpected':>10}",
        ]
        for name, tally in books.effects.items():
            lines.append(
                f"{name:<26} {tally.expected:>9} {tally.delivered:>9} {len(tally.lost):>6} "
                f"{len(tally.duplicated):>10} {len(tally.unexpected):>10}"
            )
        lines.append(
            f"dead-lettered: {len(books.dead_letters)}; left in queues: {books.queued or 0}; "
            f"unpublished outbox rows: {books.unpublished}; deliveries not sent: "
            f"{len(books.unsettled_deliveries)}; webhook calls cut short: {books.partial_webhook_calls}"
        )
    lines += ["", f"{'fault':<26} {'injected':>9} {'recovered':>9} {'ready after: median':>20} {'max':>6}"]
    for kind in outcome.options.kinds:
        count = sum(f.kind == kind for f in outcome.faults)
        times = outcome.recovery(kind)
        median = f"{statistics.median(times):.1f} s" if times else "-"
        worst = f"{max(times):.1f} s" if times else "-"
        lines.append(f"{kind:<26} {count:>9} {len(times):>9} {median:>20} {worst:>6}")
    problems: list[str] = list(outcome.notes)
    if books is not None:
        for name, tally in books.effects.items():
            problems += [f"{name} lost: {item}" for item in tally.lost]
            problems += [f"{name} duplicated: {item}" for item in tally.duplicated]
            problems += [f"{name} unexpected: {item}" for item in tally.unexpected]
        problems += books.problems + [f"dead letter: {line}" for line in books.dead_letters]
        problems += [f"delivery not sent: {line}" for line in books.unsettled_deliveries]

    problems += [
        f"not ready {f.kind} at {f.began:.1f} s ({f.detail})" for f in outcome.faults if f.recovered_after is None
    ]
    if problems:
        lines += ["", "problems:", *(f"  {p}" for p in problems[:200])]
    lines.append("")
    lines.append("OK: nothing lost, nothing doubled" if outcome.ok else "FAILED")
    return "\n".join(lines)
