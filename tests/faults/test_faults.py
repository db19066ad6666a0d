"""The fault harness's short run (issue 18): the five services as processes (two scanners, two evaluators)
through every kind of fault at least once: kill -9 and SIGTERM of a process, the notifier killed while a
delivery is in flight, a broker restart, a database restart, and every broker and database connection cut
through a proxy, while certificates change under them. Afterwards the books must balance: every alarm
transition published, recorded by the reporter and delivered by email, SNMP and webhook exactly once, nothing
left in a queue or an outbox, nothing dead-lettered, and every service ready within 30 s of each fault's end.
`python -m benchmarks.faults` is the long run.

One run serves every test below; each checks one part of the books, so that a known finding (marked xfail,
strict: it must keep failing until it is fixed) does not hide the others."""

import asyncio
import shutil
from collections.abc import Iterator

import pytest

from tests.support.faults.harness import BROKER, DATABASE, FAULT_KINDS, Options, Outcome, run_faults
from tests.support.postgres_node import postgres_available
from tests.support.rabbitmq_node import rabbitmq_available
from tests.support.snmptrapd import require_tool

pytestmark = [
    pytest.mark.faults,
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        not (rabbitmq_available() and postgres_available()), reason="needs Debian's rabbitmq-server and postgresql"
    ),
]

#: The schedule's seed: `python -m benchmarks.faults --seed 18 --minutes 1.2` repeats it.
SEED = 18
RECOVERY_SECONDS = 30.0


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    """One short run (about 70 s of faults), its table printed; its work directory (every process's log) is
    removed when the books balance."""
    require_tool("snmptrapd", "snmptrapd")
    workdir = tmp_path_factory.mktemp("faults")
    result = asyncio.run(run_faults(Options(seed=SEED), workdir))
    print(result.table())
    yield result
    if result.ok:
        shutil.rmtree(workdir, ignore_errors=True)


def test_every_fault_kind_is_injected_and_every_service_ready_again_in_time(outcome: Outcome) -> None:
    """Each kind at least once; after each fault every service answers ready, after a broker or database
    restart within 30 s of it being back."""
    assert {fault.kind for fault in outcome.faults} == set(FAULT_KINDS), outcome.table()
    assert all(fault.recovered_after is not None for fault in outcome.faults), outcome.table()
    for kind in (BROKER, DATABASE):
        assert max(outcome.recovery(kind)) <= RECOVERY_SECONDS, outcome.table()


def test_no_transition_or_delivery_is_lost_and_nothing_is_left_over(outcome: Outcome) -> None:
    """Zero lost; every history reads as one life and ends where the final certificates say; no message in a
    queue, no dead letter, no unpublished outbox row, no delivery unsent; every process stopped cleanly."""
    books = outcome.books
    assert books is not None, outcome.table()
    assert books.lost == 0, outcome.table()
    assert not (books.problems or books.dead_letters or books.queued or books.unpublished), outcome.table()
    assert not (books.unsettled_deliveries or outcome.notes), outcome.table()


def test_no_alarm_transition_is_doubled(outcome: Outcome) -> None:
    """Each transition published once and recorded once by the reporter, and no delivery nothing called for."""
    assert outcome.books is not None, outcome.table()
    assert outcome.books.duplicated_otherwise == 0, outcome.table()


@pytest.mark.xfail(
    strict=True,
    reason="finding, half fixed: a notifier that dies between a send and its record's commit sends it again when "
    "the event comes back (Deliverer.first_round, services/notifier/service_layer/delivering.py, sends before it "
    "records: a receiver cannot join the transaction). A database error in that window no longer resends (5d7a4b6: "
    "sent-but-unrecorded deliveries are recorded, not resent, in the same process); a kill -9 still does, and the "
    "run kills the notifier while the webhook sink holds a call, so this happens every run. The resend carries the "
    "same delivery id (X-Certmon-Delivery, the email's Message-ID), so a receiver can drop it; an SNMP trap carries "
    "none yet.",
)
def test_no_delivery_is_made_twice(outcome: Outcome) -> None:
    """Each alarm event reaches each recipient of each channel once."""
    assert outcome.books is not None, outcome.table()
    assert outcome.books.resent == [], outcome.table()
