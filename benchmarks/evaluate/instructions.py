"""`python -m benchmarks.evaluate.instructions`: instructions per file, certmon's bulk check against the bare
`cryptography` loop, counted by valgrind's callgrind instead of timed.

Wall-clock figures on this shared machine drift by 20-40% within minutes; an instruction count is the same
for the same code and input whatever else runs. Each side runs twice, on a small and a large directory of
the same mix (every leaf distinct): the difference divided by the difference in files is the cost of one file,
process start and exit cancelled out. Instructions are not time: Python code retires about a third as many
instructions per cycle as OpenSSL's big-number code, so the ratio here is lower than the time ratio. It is for
telling whether a change made certmon's share of the work smaller, exactly.
"""

import argparse
import datetime as dt
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.evaluate.bulk import bare_command, byte_compile, certmon_command
from benchmarks.evaluate.chains import build_estate, write_chain_files
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


def main() -> None:
    """Build the two directories, count both sides on each, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=20, help="leaves per shape in the small directory")
    parser.add_argument("--large", type=int, default=100, help="leaves per shape in the large directory")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    configure_logging("warning", "console")
    byte_compile()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    counts: dict[str, list[int]] = {"certmon": [], "bare": []}
    sizes: list[int] = []
    with tempfile.TemporaryDirectory(prefix="certmon-instr-") as scratch:
        for leaves in (args.small, args.large):
            directory = Path(scratch) / f"estate-{leaves}"
            directory.mkdir()
            estate = build_estate(directory, now, leaves_per_shape=leaves)
            files = write_chain_files(estate, directory / "chains")
            sizes.append(len(files))
            output = Path(scratch) / "output"
            counts["certmon"].append(_instructions(certmon_command(files[0].parent, estate.ca_file), output))
            counts["bare"].append(_instructions(bare_command(files[0].parent, estate.ca_file), output))
    extra_files = sizes[1] - sizes[0]
    per_file = {side: (large - small) / extra_files for side, (small, large) in counts.items()}
    print(f"instructions (callgrind), every leaf distinct; {sizes[0]} and {sizes[1]} files")
    print(f"{'side':<10} {'per file':>12} {'process start + exit':>22}")
    for side, (small, _) in counts.items():
        print(f"{side:<10} {per_file[side]:>12,.0f} {small - per_file[side] * sizes[0]:>22,.0f}")
    print(f"ratio (certmon / bare, per file): {per_file['certmon'] / per_file['bare']:.2f}")


if __name__ == "__main__":
    main()
