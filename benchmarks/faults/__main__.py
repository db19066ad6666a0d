"""`python -m benchmarks.faults [--minutes 30] [--seed N]`: the fault harness's long run (issue 18). Prints the
accounting table; exits 1 on any loss, duplicate or other problem. The work directory (logs of every process,
the nodes' data) is kept when the run fails, or with --keep."""

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from tests.support.faults.harness import Options, run_faults


def main() -> None:
    """Parse the arguments, run, print the table, exit 0 only when the books balance."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.faults", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0, help="how long faults are injected")
    parser.add_argument("--seed", type=int, default=1, help="fixes the schedule of faults and certificate changes")
    parser.add_argument("--files", type=int, default=30, help="certificate-file targets")
    parser.add_argument("--endpoints", type=int, default=4, help="TLS endpoint targets")
    parser.add_argument("--keep", action="store_true", help="keep the work directory even when the run succeeds")
    arguments = parser.parse_args()
    options = Options(
        seed=arguments.seed,
        fault_seconds=arguments.minutes * 60,
        files=arguments.files,
        endpoints=arguments.endpoints,
        change_every=(0.2, 1.0),
    )
    # Under the system's temporary folder with open permissions: the PostgreSQL cluster runs as `postgres`.
    workdir = Path(tempfile.mkdtemp(prefix="certmon-faults-"))
    workdir.chmod(0o755)
    outcome = asyncio.run(run_faults(options, workdir))
    print(outcome.table())
    if outcome.ok and not arguments.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(0 if outcome.ok else 1)


main()
