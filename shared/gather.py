"""Group commit: calls that arrive together are handled together, and each caller gets its own outcome.

A `Gatherer` takes items from concurrent callers (`submit`) and hands those that arrived together to one call of
its batch function (one transaction for all: that is the point), one batch at a time; the items submitted while a
batch runs make the next one. A batch takes what is there without waiting for what is not, so a lone item costs no
latency and a busy one gets large batches by itself. When a batch of several fails, each of its items goes to the
lone function by itself (unless `fall_back` says otherwise), so one bad item fails only its own caller.

The broker's dispatcher gathers consumed messages with it (`shared.broker.dispatch`), and the scanner its
observations' records, whose scans must not wait for each other.
"""

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class BatchCancelled(RuntimeError):
    """The gatherer was closed while the item waited or its batch ran."""


@dataclass
class _Waiting(Generic[T, R]):
    item: T
    outcome: "asyncio.Future[R]"


class Gatherer(Generic[T, R]):
    """Hands items submitted together to `handle_batch` (results in the items' order), up to `max_size` a call;
    a lone item, and each item of a failed batch, to `handle_alone`."""

    def __init__(
        self,
        name: str,
        handle_batch: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        handle_alone: Callable[[T], Awaitable[R]],
        *,
        max_size: int,
        fall_back: Callable[[int, Exception], bool] = lambda size, exc: True,
        gathered: Callable[[int], None] = lambda size: None,
    ) -> None:
        """`fall_back(size, error)` is asked when a batch of `size` failed: True hands its items to `handle_alone`
        one by one, False fails them all with `error` (a service that is closing). `gathered(size)` is told each
        batch's size (a metric)."""
        self._name, self._handle_batch, self._handle_alone = name, handle_batch, handle_alone
        self._max_size, self._fall_back, self._gathered = max(1, max_size), fall_back, gathered
        self._waiting: list[_Waiting[T, R]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """The item's result once its batch (or it alone) was handled; raises its failure."""
        waiting = _Waiting[T, R](item, asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        if self._task is None:
            # A context of its own: the batch's log lines must not carry the first caller's bound context.
            self._task = asyncio.create_task(self._run(), name=f"gather:{self._name}", context=contextvars.Context())
        return await waiting.outcome

    async def close(self) -> None:
        """Cancel the batch under way; its callers and those waiting get `BatchCancelled`."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        try:
            while self._waiting:
                await self._gather()
                batch, self._waiting = self._waiting[: self._max_size], self._waiting[self._max_size :]
                try:
                    await self._handle(batch)
                except BaseException:  # cancelled, or a bug: no caller may wait forever
                    _fail(batch, BatchCancelled(f"{self._name}: the batch was cancelled"))
                    raise
        finally:
            self._task = None
            _fail(self._waiting, BatchCancelled(f"{self._name}: closed"))
            self._waiting = []

    async def _gather(self) -> None:
        """Yield to the loop while more items keep arriving (the deliveries one read of a socket brought)."""
        seen = -1
        while seen != len(self._waiting) and len(self._waiting) < self._max_size:
            seen = len(self._waiting)
            await asyncio.sleep(0)

    async def _handle(self, batch: list[_Waiting[T, R]]) -> None:
        self._gathered(len(batch))
        if len(batch) > 1:
            try:
                results = await self._handle_batch([w.item for w in batch])
            except Exception as exc:
                if not self._fall_back(len(batch), exc):
                    _fail(batch, exc)
                    return
            else:
                for waiting, result in zip(batch, results, strict=True):
                    if not waiting.outcome.done():
                        waiting.outcome.set_result(result)
                return
        for waiting in batch:
            try:
                result = await self._handle_alone(waiting.item)
            except Exception as exc:  # this item's own failure, for its caller
                _fail([waiting], exc)
            else:
                if not waiting.outcome.done():
                    waiting.outcome.set_result(result)


def _fail(batch: Sequence[_Waiting[T, R]], failure: BaseException) -> None:
    """Fail each caller still waiting (one that was cancelled is done already)."""
    for waiting in batch:
        if not waiting.outcome.done():
            waiting.outcome.set_exception(failure)
