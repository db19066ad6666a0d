"""Run the scan benchmark and print its table: `python -m benchmarks.scan [--endpoints N] ...`.

1. Start a fleet of local TLS endpoints (`fleet.py`) in its own process.
2. certmon `full` vs sslyze (certificate info + cipher suites of every version), each in its own process:
   endpoints per second, connections per endpoint, peak memory (the child's max RSS), agreement on versions
   and suites per endpoint.
3. certmon `expiry` vs a bare asyncio handshake loop at the same concurrency: handshakes per second.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SSLYZE_VENV = ROOT / "benchmarks" / ".venv-sslyze"


def ensure_sslyze() -> Path | None:
    """The sslyze virtualenv's Python, created on first use; None when sslyze cannot be installed."""
    python = SSLYZE_VENV / "bin" / "python"
    probe = [str(python), "-c", "import sslyze"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    try:
        subprocess.run(["python3", "-m", "venv", str(SSLYZE_VENV)], check=True)
        subprocess.run([str(SSLYZE_VENV / "bin" / "pip"), "install", "-q", "sslyze"], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"sslyze could not be installed: {exc}", file=sys.stderr)
        return None
    return python


def run_child(command: list[str]) -> tuple[dict[str, Any], int]:
    """Run one measured process; returns its JSON line and its peak RSS in KiB (from wait4)."""
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stderr is not None
    out = child.stdout.read()
    err = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{command[:3]} failed ({child.returncode}):\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss


def agreement(ours: dict[str, Any], theirs: dict[str, Any], configs: dict[str, str]) -> tuple[int, list[str]]:
    """How many endpoints agree on versions and suite sets, and a line per disagreement."""
    same, notes = 0, []
    for port, mine in ours.items():
        other = theirs.get(port, {})
        if mine["versions"] == other.get("versions") and mine["suites"] == other.get("suites"):
            same += 1
        else:
            notes.append(f"  {configs[port]:<18} port {port}: certmon {mine['suites']} / sslyze {other.get('suites')}")
    return same, notes


def main() -> None:
    """Parse arguments, run every measurement, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoints", type=int, default=32)
    parser.add_argument("--full-concurrency", type=int, default=8, help="endpoints scanned at once by `full`")
    parser.add_argument("--expiry-concurrency", type=int, default=32, help="handshakes at once, expiry and bare")
    parser.add_argument("--rounds", type=int, default=40, help="passes over the fleet for expiry and bare")
    args = parser.parse_args()

    sslyze_python = ensure_sslyze()
    fleet = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.scan.fleet", str(args.endpoints)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fleet.stdout is not None
        listing = fleet.stdout.readline()
        configs = {str(e["port"]): e["config"] for e in json.loads(listing)["endpoints"]}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            handle.write(listing)
        endpoints_file = handle.name
        me = [sys.executable, "-m", "benchmarks.scan.certmon_side"]
        full, full_rss = run_child([*me, "full", endpoints_file, str(args.full_concurrency), "1"])
        expiry, _expiry_rss = run_child([*me, "expiry", endpoints_file, str(args.expiry_concurrency), str(args.rounds)])
        bare, _bare_rss = run_child([*me, "bare", endpoints_file, str(args.expiry_concurrency), str(args.rounds)])
        sslyze = None
        if sslyze_python is not None:
            sslyze = run_child(
                [str(sslyze_python), str(ROOT / "benchmarks" / "scan" / "sslyze_side.py"), endpoints_file]
            )
    finally:
        if fleet.stdin:
            fleet.stdin.close()
        fleet.wait(timeout=10)
    report(args, configs, full, full_rss, expiry, bare, sslyze)


def report(
    args: argparse.Namespace,
    configs: dict[str, str],
    full: dict[str, Any],
    full_rss: int,
    expiry: dict[str, Any],
    bare: dict[str, Any],
    sslyze: tuple[dict[str, Any], int] | None,
) -> None:
    """Print the comparison table."""
    n = len(configs)
    full_rate = n / full["seconds"]
    full_connections = sum(r["connections"] for r in full["results"].values()) / n
    incomplete = sum(1 for r in full["results"].values() if not r["complete"])
    print(f"fleet: {n} endpoints on 127.0.0.1 ({len(set(configs.values()))} configurations), {os.cpu_count()} CPUs")
    print()
    print(f"{'full scan':<22}{'endpoints/s':>12}{'conn/endpoint':>15}{'peak RSS MiB':>14}")
    print(f"{'certmon full':<22}{full_rate:>12.1f}{full_connections:>15.1f}{full_rss / 1024:>14.1f}")
    if sslyze is not None:
        theirs, sslyze_rss = sslyze
        sslyze_rate = n / theirs["seconds"]
        sslyze_connections = sum(r["connections"] for r in theirs["results"].values()) / n
        print(f"{'sslyze':<22}{sslyze_rate:>12.1f}{sslyze_connections:>15.1f}{sslyze_rss / 1024:>14.1f}")
        print(
            f"{'ratio certmon/sslyze':<22}{full_rate / sslyze_rate:>11.1f}x"
            f"{full_connections / sslyze_connections:>14.2f}x{full_rss / sslyze_rss:>13.2f}x"
        )
        same, notes = agreement(full["results"], theirs["results"], configs)
        print(f"answers agree (versions and suites): {same}/{n} endpoints")
        for note in notes:
            print(note)
    else:
        print("sslyze: not installed (see stderr)")
    print(f"certmon incomplete enumerations: {incomplete}")
    print()
    expiry_rate = expiry["handshakes"] / expiry["seconds"]
    bare_rate = bare["handshakes"] / bare["seconds"]
    print(f"{'handshakes':<22}{'per second':>12}{'errors':>15}   (concurrency {args.expiry_concurrency})")
    print(f"{'certmon expiry':<22}{expiry_rate:>12.0f}{expiry['errors']:>15}")
    print(f"{'bare asyncio loop':<22}{bare_rate:>12.0f}{bare['errors']:>15}")
    print(f"{'ratio expiry/bare':<22}{expiry_rate / bare_rate:>11.0%}")


if __name__ == "__main__":
    main()
