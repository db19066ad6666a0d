"""The bulk user path: `certmon check --file DIR --json` over one PEM file per chain, process start included,
against the bare `cryptography` cost of the same files (`bare_files.py`), measured alternately in the same run."""

import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BulkRound:
    """One certmon process over the directory and one bare process over the same files."""

    certmon_seconds: float  # wall time of the whole `certmon check` process, start and output included
    bare_seconds: float  # the bare loop alone: parse each file's PEM, build the verifier, verify
    bare_wall_seconds: float  # the bare process, start included


def _run(args: list[str]) -> tuple[subprocess.CompletedProcess[bytes], float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], capture_output=True, check=False)
    return done, time.perf_counter() - started


def certmon_command(directory: Path, ca_file: Path) -> list[str]:
    """The user's bulk check of `directory`, as arguments to the Python interpreter."""
    return ["-m", "services.cli", "check", "--json", "--ca-file", str(ca_file), "--file", str(directory)]


def bare_command(directory: Path, ca_file: Path) -> list[str]:
    """The bare loop over the same files, as arguments to the Python interpreter."""
    return ["-m", "benchmarks.evaluate.bare_files", str(ca_file), str(directory)]


def _certmon(directory: Path, ca_file: Path, files: int) -> float:
    """The whole `certmon check` process, its JSON written to a file (as `> out.json` would): read through a
    pipe by this process, the 35 MB would cost this process's time on the same pinned core."""
    output = directory.parent / "certmon-output.json"
    with output.open("wb") as out:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, *certmon_command(directory, ca_file)], stdout=out, stderr=subprocess.PIPE, check=False
        )
        elapsed = time.perf_counter() - started
    try:
        judged = len(json.loads(output.read_bytes()))
    except ValueError:
        raise RuntimeError(f"certmon check failed ({done.returncode}): {done.stderr.decode()[-2000:]}") from None
    finally:
        output.unlink()
    if judged != files:
        raise RuntimeError(f"certmon check judged {judged} of {files} files")
    return elapsed


def _bare(directory: Path, ca_file: Path, files: int) -> tuple[float, float]:
    done, elapsed = _run(bare_command(directory, ca_file))
    if done.returncode != 0:
        raise RuntimeError(f"bare run failed: {done.stderr.decode()[-2000:]}")
    figures = json.loads(done.stdout)
    if figures["files"] != files or figures["verified"] != files:
        raise RuntimeError(f"bare run judged {figures} of {files} files")
    return float(figures["seconds"]), elapsed


def byte_compile() -> None:
    """Compile certmon's modules as an installed package has them (pip and the image byte-compile at install).
    A checkout run with PYTHONDONTWRITEBYTECODE set, as this machine has it, would otherwise compile some 60
    modules from source at every start: 50 ms that no installed certmon spends."""
    done = subprocess.run([sys.executable, "-m", "compileall", "-q", "services", "shared"], check=False)
    if done.returncode != 0:
        raise RuntimeError("compileall failed")


def _warm(files: list[Path]) -> None:
    """Read every file once, untimed, before each measured run: this machine's page cache sheds files within
    seconds, and whichever run came first would pay the disk (0.1 s warm, 0.8 s cold for 9,600 files). Both
    sides are measured on files in memory: the cost compared is the evaluation's, not the disk's."""
    for path in files:
        path.read_bytes()


def measure_bulk(files: list[Path], ca_file: Path, *, rounds: int = 3, label: str = "") -> list[BulkRound]:
    """Print and return `rounds` alternating (certmon, bare) measurements over the files' directory."""
    directory = files[0].parent
    byte_compile()
    results: list[BulkRound] = []
    for _ in range(rounds):
        _warm(files)
        certmon = _certmon(directory, ca_file, len(files))
        _warm(files)
        bare, bare_wall = _bare(directory, ca_file, len(files))
        results.append(BulkRound(certmon, bare, bare_wall))
    _, startup = _run(["-m", "services.cli", "check", "--json", "--ca-file", str(ca_file), "--file", str(files[0])])
    n = len(files)
    print()
    print(
        f"bulk: certmon check --json --ca-file ROOTS --file {directory.name}/  "
        f"({n} files, {label}, process start included)"
    )
    print(f"{'round':<6} {'certmon s':>10} {'files/s':>9} {'bare loop s':>12} {'bare files/s':>13} {'ratio':>6}")
    for index, r in enumerate(results, 1):
        print(
            f"{index:<6} {r.certmon_seconds:>10.2f} {n / r.certmon_seconds:>9,.0f} {r.bare_seconds:>12.2f} "
            f"{n / r.bare_seconds:>13,.0f} {r.certmon_seconds / r.bare_seconds:>6.2f}"
        )
    median = statistics.median(r.certmon_seconds for r in results)
    bare_median = statistics.median(r.bare_seconds for r in results)
    print(f"{'median':<6} {median:>10.2f} {n / median:>9,.0f} {bare_median:>12.2f} {n / bare_median:>13,.0f}")
    print(f"bare process with its own start (median, s): {statistics.median(r.bare_wall_seconds for r in results):.2f}")
    print(f"certmon check of one file alone (s), the start-up floor: {startup:.2f}")
    print("ratio: certmon wall time (start included) / bare loop time (start excluded)")
    return results
