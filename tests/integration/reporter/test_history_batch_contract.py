"""Storing evaluations in batches, one contract on both history adapters: `record_evaluations` does what
`record_evaluation` on each in order does, redeliveries, runs started inside the batch and the latest included."""

import asyncio
from datetime import datetime

from services.reporter.adapters.memory import InMemoryHistory
from services.reporter.ports import HistoryStore
from shared.events import Evaluation
from shared.events.evaluation import Level
from tests.integration.reporter import test_history_contract as contract
from tests.integration.reporter.test_history_contract import StoreUnderTest
from tests.integration.reporter.test_history_runs_contract import DAY, FINGERPRINT, HOUR, seen
from tests.unit.reporter.reporter_factories import evaluation

# The contract's fixtures: each case runs once on the in-memory history and once on PostgreSQL.
pool_or_none = contract.pool_or_none
under_test = contract.under_test

HOSTS = [f"t{n:02}.example" for n in range(12)]


def of_host(host: str, hour: int, *, level: Level = "ok") -> Evaluation:
    """An evaluation of `host` as BASE is of a.example, `hour` hours after DAY, at `level`."""
    return seen(DAY + hour * HOUR, level=level, of=evaluation(host, days=90, evaluated_at=DAY))


def fingerprint_of(host: str) -> str:
    """The fingerprint of `host`'s certificate in `of_host`."""
    certificate = of_host(host, 0).certificate
    assert certificate is not None
    return certificate.fingerprint_sha256


async def runs(history: HistoryStore, fingerprint: str = FINGERPRINT) -> list[tuple[str, datetime, datetime, int]]:
    """The runs of a certificate, newest first: (level, first sighting, last sighting, how many)."""
    rows = await history.observations_of(fingerprint, limit=100)
    return [(r.level, r.first_seen_at, r.evaluated_at, r.seen_count) for r in rows]


class TestBatches:
    """`record_evaluations` against the effects of `record_evaluation` one by one."""

    async def test_an_empty_batch_stores_nothing(self, under_test: StoreUnderTest) -> None:
        """No evaluations: no answers, no rows."""
        assert await under_test.history.record_evaluations([]) == []
        assert await under_test.history.latest() == []

    async def test_redelivered_ids_answer_false_and_change_nothing(self, under_test: StoreUnderTest) -> None:
        """An id stored before, or earlier in the same batch, is a redelivery: False, and not counted."""
        history = under_test.history
        await history.record_evaluation("e0", seen(DAY))
        answers = await history.record_evaluations(
            [("e0", seen(DAY + 5 * HOUR)), ("e1", seen(DAY + HOUR)), ("e1", seen(DAY + 6 * HOUR))]
        )
        assert answers == [False, True, False]
        assert await runs(history) == [("ok", DAY, DAY + HOUR, 2)]
        assert await history.latest() == [seen(DAY + HOUR)]

    async def test_a_batch_of_sightings_is_one_run(self, under_test: StoreUnderTest) -> None:
        """24 unchanged hourly evaluations in one batch, the first first and the rest out of order, are one run
        seen 24 times at its last."""
        hours = [0, *range(2, 24, 2), *range(1, 24, 2)]
        answers = await under_test.history.record_evaluations([(f"e{h}", seen(DAY + h * HOUR)) for h in hours])
        assert answers == [True] * 24
        assert await runs(under_test.history) == [("ok", DAY, DAY + 23 * HOUR, 24)]
        assert await under_test.history.latest() == [seen(DAY + 23 * HOUR)]

    async def test_a_batch_extends_the_stored_run(self, under_test: StoreUnderTest) -> None:
        """Sightings in a later batch count on the run an earlier one started."""
        history = under_test.history
        await history.record_evaluations([(f"a{h}", seen(DAY + h * HOUR)) for h in range(3)])
        await history.record_evaluations([(f"b{h}", seen(DAY + h * HOUR)) for h in range(3, 6)])
        assert await runs(history) == [("ok", DAY, DAY + 5 * HOUR, 6)]

    async def test_the_same_target_changed_then_unchanged_in_one_batch(self, under_test: StoreUnderTest) -> None:
        """A change starts a run inside the batch and the next unchanged evaluation is its sighting; a late one
        from before the change is a sighting of the stored run."""
        history = under_test.history
        await history.record_evaluation("stored", seen(DAY))
        batch = [
            ("w1", seen(DAY + 2 * HOUR, level="warning")),
            ("w2", seen(DAY + 3 * HOUR, level="warning")),
            ("late", seen(DAY + HOUR)),
            ("back", seen(DAY + 4 * HOUR)),
        ]
        assert await history.record_evaluations(batch) == [True] * 4
        assert await runs(history) == [
            ("ok", DAY + 4 * HOUR, DAY + 4 * HOUR, 1),
            ("warning", DAY + 2 * HOUR, DAY + 3 * HOUR, 2),
            ("ok", DAY, DAY + HOUR, 2),
        ]
        assert await history.latest() == [seen(DAY + 4 * HOUR)]

    async def test_a_change_started_in_the_batch_before_a_stored_runs_time(self, under_test: StoreUnderTest) -> None:
        """The run in force is whichever started last before the evaluation: a run the batch starts earlier than
        the stored one does not take the evaluations after the stored one."""
        history = under_test.history
        await history.record_evaluation("stored", seen(DAY + 4 * HOUR))
        batch = [
            ("w1", seen(DAY + HOUR, level="warning")),
            ("ok", seen(DAY + 5 * HOUR)),
            ("w2", seen(DAY + 2 * HOUR, level="warning")),
        ]
        await history.record_evaluations(batch)
        ok_warning = [(level, first, count) for level, first, _, count in await runs(history)]
        assert ok_warning == [("ok", DAY + 4 * HOUR, 2), ("warning", DAY + HOUR, 2)]

    async def test_the_latest_is_the_newest_of_the_batch_and_the_store(self, under_test: StoreUnderTest) -> None:
        """A target's latest is its newest evaluation whatever the order in the batch, a tie goes to the later in
        the batch, and an older batch leaves a newer stored latest alone."""
        history = under_test.history
        await history.record_evaluation("c-stored", of_host("c.example", 9))
        a_tie = of_host("a.example", 5, level="critical")
        await history.record_evaluations(
            [
                ("a1", of_host("a.example", 5)),
                ("a2", of_host("a.example", 2)),
                ("a3", a_tie),
                ("b1", of_host("b.example", 7)),
                ("b2", of_host("b.example", 8, level="warning")),
                ("c1", of_host("c.example", 3, level="warning")),
            ]
        )
        latest = {e.target_key: e for e in await history.latest()}
        assert latest == {
            "a.example:443": a_tie,
            "b.example:443": of_host("b.example", 8, level="warning"),
            "c.example:443": of_host("c.example", 9),
        }
        assert [row.level for row in await history.certificate_rows(sort="target", limit=10)] == [
            "critical",
            "warning",
            "ok",
        ]

    async def test_batches_store_what_one_by_one_stores(self, under_test: StoreUnderTest) -> None:
        """A mixed stream (targets interleaved, changes, late and repeated sightings, redeliveries) stored in
        batches of 7 reads back as the same stream stored one by one in the in-memory history."""
        stream: list[tuple[str, Evaluation]] = []
        levels: list[Level] = ["ok", "ok", "warning", "warning", "ok", "critical", "critical", "ok"]
        for step, hour in enumerate([0, 1, 3, 2, 4, 6, 5, 7]):
            for n, host in enumerate(HOSTS[:5]):
                level = levels[(step + n) % len(levels)]
                stream.append((f"{host}-{hour}", of_host(host, hour, level=level)))
        stream[10:10] = [stream[3], stream[4]]  # redeliveries inside the stream
        reference = InMemoryHistory()
        expected = [await reference.record_evaluation(event_id, e) for event_id, e in stream]
        answers = []
        for start in range(0, len(stream), 7):
            answers += await under_test.history.record_evaluations(stream[start : start + 7])
        assert answers == expected
        assert await under_test.history.latest() == await reference.latest()
        for host in HOSTS[:5]:
            assert await runs(under_test.history, fingerprint_of(host)) == await runs(reference, fingerprint_of(host))

    async def test_concurrent_batches_over_the_same_targets_count_every_sighting(
        self, under_test: StoreUnderTest
    ) -> None:
        """Two replicas storing sightings of the same targets in opposite orders at once both succeed, and every
        sighting is counted (the lock order itself: `test_history_storage`)."""
        history = under_test.history
        await history.record_evaluations([(f"{host}-0", of_host(host, 0)) for host in HOSTS])
        forward = [(f"{host}-1", of_host(host, 1)) for host in HOSTS]
        backward = [(f"{host}-2", of_host(host, 2)) for host in reversed(HOSTS)]
        for _ in range(3):
            await asyncio.gather(*(history.record_evaluations(batch) for batch in (forward, backward)))
            forward = [(f"{event_id}+", e) for event_id, e in forward]
            backward = [(f"{event_id}+", e) for event_id, e in backward]
        for host in HOSTS:
            assert await runs(history, fingerprint_of(host)) == [("ok", DAY, DAY + 2 * HOUR, 7)]
