"""The bulk user path: `certmon check --file DIR --json` over one PEM file per chain, process start included."""

import subprocess
import sys
import time
from pathlib import Path


def _run(args: list[str]) -> tuple[subprocess.CompletedProcess[bytes], float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "services.cli", *args], capture_output=True, check=False)
    return done, time.perf_counter() - started


def measure_bulk(files: list[Path], ca_file: Path) -> float:
    """Print and return files per second for one `certmon check` process over the whole directory."""
    directory = files[0].parent
    common = ["check", "--json", "--ca-file", str(ca_file)]
    done, elapsed = _run([*common, "--file", str(directory)])
    how = f"certmon check --file {directory.name}/ --json"
    if done.returncode == 3 or not done.stdout.strip().startswith(b"["):
        # `--file DIR` not available in this checkout: the same files as repeated `--file F`.
        repeated = [arg for path in files for arg in ("--file", str(path))]
        done, elapsed = _run([*common, *repeated])
        how = f"certmon check --file F ... ({len(files)} times) --json"
    if not done.stdout.strip().startswith(b"["):
        raise RuntimeError(f"certmon check failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    _, startup = _run(["check", "--json", "--file", str(files[0])])
    rate = len(files) / elapsed
    print()
    print(f"bulk: {how}")
    print(f"{'files':<44} {len(files):>12}")
    print(f"{'wall time, process start included (s)':<44} {elapsed:>12.2f}")
    print(f"{'files per second':<44} {rate:>12,.0f}")
    print(f"{'one file alone (s): the start-up floor':<44} {startup:>12.2f}")
    return rate
