"""Group commit (`shared.gather`): calls that arrive together share one batch call, each caller gets its own
result or failure, and a lone call costs no wait."""

import asyncio
from collections.abc import Sequence

import pytest

from shared.gather import BatchCancelled, Gatherer


class Doubler:
    """A batch function that doubles numbers, noting each call's items; `bad` numbers fail."""

    def __init__(self, bad: frozenset[int] = frozenset()) -> None:
        self.batches: list[list[int]] = []
        self.alone: list[int] = []
        self.bad = bad

    async def batch(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        if self.bad & set(items):
            raise ValueError(f"bad among {list(items)}")
        return [2 * i for i in items]

    async def one(self, item: int) -> int:
        self.alone.append(item)
        if item in self.bad:
            raise ValueError(f"bad {item}")
        return 2 * item


async def test_calls_made_together_share_batches_up_to_the_size_and_each_gets_its_result() -> None:
    doubler = Doubler()
    gatherer = Gatherer("t", doubler.batch, doubler.one, max_size=4)
    results = await asyncio.gather(*(gatherer.submit(i) for i in range(10)))
    assert results == [2 * i for i in range(10)]
    assert doubler.batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert await gatherer.submit(7) == 14
    assert doubler.alone == [7]  # a lone call goes to the lone function, at once


async def test_the_calls_made_while_a_batch_runs_make_the_next_batch() -> None:
    """While one batch is under way the next gathers, however they trickle in."""
    release = asyncio.Event()
    sizes: list[int] = []

    async def slow(items: Sequence[int]) -> list[int]:
        sizes.append(len(items))
        await release.wait()
        return list(items)

    async def one(item: int) -> int:
        sizes.append(1)
        await release.wait()
        return item

    gatherer = Gatherer("t", slow, one, max_size=100)
    first = asyncio.create_task(gatherer.submit(0))
    await asyncio.sleep(0.01)
    later = [asyncio.create_task(gatherer.submit(i)) for i in range(1, 6)]
    await asyncio.sleep(0.01)
    release.set()
    assert [await first, *[await t for t in later]] == list(range(6))
    assert sizes == [1, 5]


async def test_a_failed_batch_falls_back_to_each_item_alone_and_only_the_bad_one_fails() -> None:
    doubler = Doubler(bad=frozenset({3}))
    told: list[tuple[int, str]] = []

    def fall_back(size: int, exc: Exception) -> bool:
        told.append((size, str(exc)))
        return True

    gatherer = Gatherer("t", doubler.batch, doubler.one, max_size=10, fall_back=fall_back)
    outcomes = await asyncio.gather(*(gatherer.submit(i) for i in range(5)), return_exceptions=True)
    assert outcomes[:3] == [0, 2, 4] and outcomes[4] == 8
    assert isinstance(outcomes[3], ValueError) and str(outcomes[3]) == "bad 3"
    assert told == [(5, "bad among [0, 1, 2, 3, 4]")]
    assert doubler.alone == [0, 1, 2, 3, 4]


async def test_without_fall_back_every_caller_of_a_failed_batch_gets_its_error() -> None:
    doubler = Doubler(bad=frozenset({1}))
    gatherer = Gatherer("t", doubler.batch, doubler.one, max_size=10, fall_back=lambda size, exc: False)
    outcomes = await asyncio.gather(*(gatherer.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(o, ValueError) and "bad among" in str(o) for o in outcomes)
    assert doubler.alone == []


async def test_closing_fails_the_running_batch_and_the_waiting_calls() -> None:
    started = asyncio.Event()

    async def hangs(items: Sequence[int]) -> list[int]:
        started.set()
        await asyncio.sleep(30)
        return list(items)

    gatherer = Gatherer("t", hangs, hangs_alone, max_size=2)
    calls = [asyncio.create_task(gatherer.submit(i)) for i in range(3)]
    await started.wait()
    await gatherer.close()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(o, BatchCancelled) for o in outcomes)


async def hangs_alone(item: int) -> int:
    pytest.fail("a lone call while closing")


async def test_sizes_are_reported_and_a_caller_that_gave_up_does_not_break_the_batch() -> None:
    sizes: list[int] = []
    doubler = Doubler()
    gatherer = Gatherer("t", doubler.batch, doubler.one, max_size=10, gathered=sizes.append)
    calls = [asyncio.create_task(gatherer.submit(i)) for i in range(3)]
    await asyncio.sleep(0)  # all three submitted; the batch is still gathering
    calls[1].cancel()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert outcomes[0] == 0 and outcomes[2] == 4 and isinstance(outcomes[1], asyncio.CancelledError)
    assert sizes == [3]
    assert doubler.batches == [[0, 1, 2]]
