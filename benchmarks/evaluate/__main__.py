"""`python -m benchmarks.evaluate`: evaluations per second against the bare `cryptography` verification cost,
and files per second through `certmon check --file DIR` (process start included) against the bare cost of the
same files. One core: this process and its children are pinned to one CPU."""

import argparse
import datetime as dt
import os
import tempfile
from pathlib import Path

from benchmarks.evaluate.bulk import measure_bulk
from benchmarks.evaluate.chains import build_estate, write_chain_files
from benchmarks.evaluate.inprocess import measure_inprocess
from shared.logging import configure_logging


def _pin_to_one_core() -> str:
    """Run on one CPU so the figure is per core (pydantic and OpenSSL start no worker threads here anyway)."""
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"cpu {cpu}"


def main() -> None:
    """Build the estate, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per in-process measurement")
    parser.add_argument("--bulk-files", type=int, default=0, help="chain files for the CLI run (0: the estate's)")
    parser.add_argument("--bulk-rounds", type=int, default=3, help="alternating certmon and bare runs")
    parser.add_argument("--bulk-only", action="store_true", help="skip the in-process measurement")
    args = parser.parse_args()
    configure_logging("warning", "console")  # the trust store's load line would land in the table
    pinned = _pin_to_one_core()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="certmon-bench-") as scratch:
        estate = build_estate(Path(scratch), now)
        print(
            f"estate: {len(estate.chains)} chains (RSA-2048 and ECDSA P-256, 2-4 certificates), "
            f"stores: {', '.join(f'{name} ({len(store)} anchors)' for name, store in estate.stores.items())}; {pinned}"
        )
        if not args.bulk_only:
            measure_inprocess(estate, now, seconds=args.seconds)
        copies = max(1, args.bulk_files // len(estate.chains))
        files = write_chain_files(estate, Path(scratch) / "chains", copies=copies)
        measure_bulk(files, estate.ca_file, rounds=args.bulk_rounds, label=f"{copies} copies of each chain")
        # The same number of files, every leaf its own: nothing about a leaf is known before its file is read.
        (Path(scratch) / "distinct").mkdir()
        distinct = build_estate(Path(scratch) / "distinct", now, leaves_per_shape=len(files) // (2 * 3))
        distinct_files = write_chain_files(distinct, Path(scratch) / "distinct" / "chains")
        measure_bulk(distinct_files, distinct.ca_file, rounds=args.bulk_rounds, label="every leaf distinct")


if __name__ == "__main__":
    main()
