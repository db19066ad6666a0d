"""A bucket that refuses its first writes, for the tests of upload retries (a `Bucket` twin around a real one)."""

from collections.abc import Awaitable, Callable
from pathlib import Path

from services.reporter.ports import Bucket, BucketError


class FailingBucket:
    """Refuses the first `failures` writes of keys starting with `only` with BucketError, then writes through to
    `inner`; counts the tries of those keys, and awaits `probe` at each refusal (to look at the world then)."""

    def __init__(
        self,
        inner: Bucket,
        *,
        failures: int,
        only: str = "",
        probe: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._inner, self.failures_left, self._only, self._probe, self.tries = inner, failures, only, probe, 0

    @property
    def location(self) -> str:
        """The inner bucket's location."""
        return self._inner.location

    async def put(self, key: str, data: bytes, content_type: str) -> str:
        """Refuse while failures are left, else write to the inner bucket."""
        await self._refuse(key)
        return await self._inner.put(key, data, content_type)

    async def put_file(self, key: str, source: Path, content_type: str) -> str:
        """Refuse while failures are left, else write the file to the inner bucket."""
        await self._refuse(key)
        return await self._inner.put_file(key, source, content_type)

    async def _refuse(self, key: str) -> None:
        if not key.startswith(self._only):
            return
        self.tries += 1
        if self.failures_left > 0:
            self.failures_left -= 1
            if self._probe is not None:
                await self._probe()
            raise BucketError(f"refused {key} (test)")

    async def list(self, prefix: str = "") -> list[str]:
        """The inner bucket's listing."""
        return await self._inner.list(prefix)
