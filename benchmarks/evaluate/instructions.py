"""`python -m benchmarks.evaluate.instructions`: instructions per file, certmon's bulk check against the bare
`cryptography` loop, counted by valgrind's callgrind instead of timed.

Wall-clock figures on this shared machine drift by 20-40% within minutes; an instruction count is the same
for the same code and input whatever else runs. Each side runs twice, on a small and a large directory of
the same mix (every leaf distinct): the difference divided by the difference in files is the cost of one file,
process start and exit cancelled out. Instructions are not time: Python code retires about a third as many
instructions per cycle as OpenSSL's big-number code, so the ratio here is lower than the time ratio. It is for
telling whether a change made certmon's share of the work smaller, exactly.

With `--stages`, certmon's per-file work is counted stage by stage instead (`stage_loop.py`, in process): what
observing, parsing the leaf, the verifier, the chain verdict, the evaluation, the application layer and the
JSON each add. The runs are independent, so they run on every core at once.
"""

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.evaluate.bulk import bare_command, byte_compile, certmon_command
from benchmarks.evaluate.chains import build_estate, write_chain_files
from benchmarks.evaluate.stage_loop import STAGES
from shared.logging import configure_logging

_COLLECTED = re.compile(r"Collected : (\d+)")


def _instructions(command: list[str], output: Path) -> int:
    """Instructions the whole process retired under callgrind (its standard output written to `output`)."""
    with output.open("wb") as out:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, *command],
            stdout=out,
            stderr=subprocess.PIPE,
            check=False,
        )
    found = _COLLECTED.search(done.stderr.decode(errors="replace"))
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{command[:3]} failed under callgrind: {done.stderr.decode()[-2000:]}")
    return int(found.group(1))


def _commands(directory: Path, ca_file: Path, *, stages: bool) -> dict[str, list[str]]:
    """What is counted on one directory: certmon's check and the bare loop, or each stage of certmon's work."""
    if not stages:
        return {"certmon": certmon_command(directory, ca_file), "bare": bare_command(directory, ca_file)}
    loop = ["-m", "benchmarks.evaluate.stage_loop"]
    return {name: [*loop, str(index), str(ca_file), str(directory)] for index, (name, _) in enumerate(STAGES)}


def _print_sides(per_file: dict[str, float], start: dict[str, float], sizes: list[int]) -> None:
    print(f"instructions (callgrind), every leaf distinct; {sizes[0]} and {sizes[1]} files")
    print(f"{'side':<10} {'per file':>12} {'process start + exit':>22}")
    for side, count in per_file.items():
        print(f"{side:<10} {count:>12,.0f} {start[side]:>22,.0f}")
    print(f"ratio (certmon / bare, per file): {per_file['certmon'] / per_file['bare']:.2f}")


def _print_stages(per_file: dict[str, float], sizes: list[int]) -> None:
    print(f"instructions per file (callgrind), certmon's work by stage; {sizes[0]} and {sizes[1]} files")
    print(f"{'stage':<15} {'adds':>10} {'so far':>11}  what it adds")
    before = 0.0
    for name, what in STAGES:
        print(f"{name:<15} {per_file[name] - before:>10,.0f} {per_file[name]:>11,.0f}  {what}")
        before = per_file[name]


def main() -> None:
    """Build the two directories, count each command on each, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=20, help="leaves per shape in the small directory")
    parser.add_argument("--large", type=int, default=100, help="leaves per shape in the large directory")
    parser.add_argument("--stages", action="store_true", help="count certmon's work stage by stage")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    configure_logging("warning", "console")
    byte_compile()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="certmon-instr-") as scratch:
        runs: list[tuple[str, list[str], Path]] = []
        sizes: list[int] = []
        for leaves in (args.small, args.large):
            directory = Path(scratch) / f"estate-{leaves}"
            directory.mkdir()
            estate = build_estate(directory, now, leaves_per_shape=leaves)
            files = write_chain_files(estate, directory / "chains")
            sizes.append(len(files))
            for name, command in _commands(files[0].parent, estate.ca_file, stages=args.stages).items():
                runs.append((name, command, directory / f"output-{name}"))
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            counts = list(pool.map(lambda run: _instructions(run[1], run[2]), runs))
    names = [name for name, _, _ in runs[: len(runs) // 2]]
    small, large = counts[: len(names)], counts[len(names) :]
    per_file = {name: (b - a) / (sizes[1] - sizes[0]) for name, a, b in zip(names, small, large, strict=True)}
    if args.stages:
        _print_stages(per_file, sizes)
    else:
        start = {name: a - per_file[name] * sizes[0] for name, a in zip(names, small, strict=True)}
        _print_sides(per_file, start, sizes)


if __name__ == "__main__":
    main()
