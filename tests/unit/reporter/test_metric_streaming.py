"""`/metrics` renders the estate a page at a time into one temporary file per family and streams the files: the
text is the one-shot rendering's, byte for byte, and scrapes that arrive together share one rendering."""

import asyncio
from collections.abc import AsyncIterator
from functools import partial

from prometheus_client.parser import text_string_to_metric_families

from services.reporter.adapters.memory import InMemoryHistory
from services.reporter.adapters.metric_source import HistoryLatest, Page
from services.reporter.adapters.metric_text import Family, FamilyFiles
from services.reporter.adapters.metrics import EstateMetrics, EstateRendering, exposition
from shared.events import Evaluation, make_event
from tests.unit.reporter.reporter_factories import NOW, evaluation
from tests.unit.reporter.test_exporter_metrics import DOWN, FILE, OLD, SHOP

ESTATE = sorted(
    [SHOP, OLD, FILE, DOWN, *(evaluation(f"h{n}.example", days=n * 9 - 20, level="warning") for n in range(7))],
    key=lambda e: e.target_key,
)


def test_each_family_stays_contiguous_across_batches_and_reads_back_in_any_chunk_size() -> None:
    """Lines added in several batches come out grouped by family, in the families' order, headers first (also for
    a family without samples), however small the chunks they are read in."""
    first, empty, last = Family("a_first", "First."), Family("b_empty", "None."), Family("c_last", "Last.")
    files = FamilyFiles([first, empty, last])
    for batch in range(3):
        first.add(f'n="{batch}"', batch)
        last.add(f'n="{batch}"', batch + 0.5)
        files.spool()
        assert first.lines == last.lines == []
    files.complete()
    text = b"".join(files.chunks(size=7)).decode()
    assert text == (
        "# HELP a_first First.\n# TYPE a_first gauge\n"
        'a_first{n="0"} 0\na_first{n="1"} 1\na_first{n="2"} 2\n'
        "# HELP b_empty None.\n# TYPE b_empty gauge\n"
        "# HELP c_last Last.\n# TYPE c_last gauge\n"
        'c_last{n="0"} 0.5\nc_last{n="1"} 1.5\nc_last{n="2"} 2.5\n'
    )
    assert b"".join(files.chunks()) == text.encode()
    files.close()


def test_two_readers_of_one_rendering_each_read_the_whole_text() -> None:
    """Readers interleaved on the same files do not disturb each other (no shared file position)."""
    family = Family("x", "X.")
    files = FamilyFiles([family])
    for n in range(1000):
        family.add(f'n="{n}"', n)
    files.complete()
    one, two = files.chunks(size=100), files.chunks(size=333)
    read_one, read_two = [next(one)], [next(two)]
    read_one += one
    read_two += two
    assert b"".join(read_one) == b"".join(read_two) == b"".join(files.chunks())
    files.close()


def test_rendering_page_by_page_gives_the_one_shot_text() -> None:
    """Counts across the estate (targets per level, unreadable targets) and every family's samples are the same
    whether the targets come in pages of one, of four, or all at once; the text parses."""
    whole = exposition(ESTATE, now=NOW)
    for size in (1, 4):
        rendering = EstateRendering(NOW)
        for start in range(0, len(ESTATE), size):
            rendering.add_page(partial(list, ESTATE[start : start + size]))
        files = rendering.finish()
        assert b"".join(files.chunks()) == whole
        files.close()
    assert {f.name for f in text_string_to_metric_families(whole.decode())} >= {
        "certmon_certificates",
        "x509_cert_error",
    }


class CountingSource:
    """The estate in pages of two, counting how many times it was read and pausing between pages so that scrapes
    overlap."""

    def __init__(self, evaluations: list[Evaluation]) -> None:
        self.evaluations, self.reads = evaluations, 0

    async def pages(self) -> AsyncIterator[Page]:
        """Pages of two, in order."""
        self.reads += 1
        for start in range(0, len(self.evaluations), 2):
            await asyncio.sleep(0.01)
            yield partial(list, self.evaluations[start : start + 2])


async def test_scrapes_that_arrive_together_share_one_rendering() -> None:
    """Two scrapes at once read the estate once and get the same text; once the reuse window has passed, a scrape
    reads it anew."""
    source = CountingSource(ESTATE)
    metrics = EstateMetrics(source, clock=lambda: NOW, reuse_seconds=0.2)
    first, second = await asyncio.gather(metrics.scrape(), metrics.scrape())
    assert b"".join(first) == b"".join(second) == exposition(ESTATE, now=NOW)
    assert source.reads == 1
    await asyncio.sleep(0.3)
    assert b"".join(await metrics.scrape()) == exposition(ESTATE, now=NOW)
    assert source.reads == 2


async def test_history_pages_cover_every_target_once_in_key_order() -> None:
    """Paging the in-memory twin by target key yields each latest evaluation once, a full last page included."""
    history = InMemoryHistory()
    for e in ESTATE:
        await history.record_evaluation(make_event("certificate.evaluated.v1", e, source="t").id, e)
    for size in (1, 5, len(ESTATE), 100):
        keys = [e.target_key async for page in HistoryLatest(history, page_size=size).pages() for e in page()]
        assert keys == [e.target_key for e in ESTATE]
