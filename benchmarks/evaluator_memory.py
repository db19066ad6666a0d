"""`python -m benchmarks.evaluator_memory`: the evaluator's memory and speed over a stream of distinct leaves, with
the caches' old bounds and the new ones in the same run.

    .venv/bin/python -m benchmarks.evaluator_memory [--leaves 100000] [--checkpoints 20000,100000]
                                                    [--table-leaves 12000] [--speed-leaves 20000] [--seconds 3]

The estate is the pipeline benchmark's (`benchmarks/pipeline/pki.py`): distinct EC leaves signed directly by four
roots the config trusts, each its own file target, generated once into a scratch file. Everything goes through
the evaluator's service layer as the handler calls it (`Evaluator.evaluate`: the config's answer, the
intermediate finder, the evaluation), one `EvaluatorCaches` per bounds set:

- **RSS** (a child process per bounds set, both at once): every leaf once, in order (a first scan, or an hourly
  cycle of an estate larger than the tables), and the process's `VmRSS` before the first and at each checkpoint;
- **tables** (a child per bounds set, with `tracemalloc`, `--table-leaves` leaves): each table's entries, and
  the Python heap it frees when cleared, in the order printed (what a table alone keeps alive is counted where it
  is cleared; the certificates' Rust allocations are not seen by `tracemalloc`: the RSS per leaf is the whole);
- **speed** (one process, both bounds sets, in alternating blocks so that this shared machine's slow spells hit
  both, timed in CPU time): `--speed-leaves` distinct leaves in blocks of 500 (each set meets every leaf once),
  then the first 48 leaves again and again (an estate that fits, evaluated on every scan) for `--seconds` in all,
  in six turns.
"""

import argparse
import datetime as dt
import gc
import itertools
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sized
from pathlib import Path
from typing import Any

from benchmarks.pipeline import pki
from services.evaluator.adapters.trust import load_trust_store
from services.evaluator.domain import EvaluatorCaches
from services.evaluator.domain.caches import CacheBounds
from services.evaluator.service_layer.evaluate_observation import Evaluator
from services.evaluator.service_layer.intermediate_finder import IntermediateFinder
from shared.config import parse_config
from shared.events import Observation, Target
from shared.logging import configure_logging

#: The bounds before issue 17: 8,192 certificates by DER and by base64 alike, 16,384 signatures, and so on.
OLD = CacheBounds(
    authorities=8192,
    leaves=8192,
    leaf_key_length=1 << 40,  # no length bound then, beyond 16 KiB a certificate
    issuer_names=8192,
    links=16384,
    signatures=16384,
    answers=8192,
    verdicts=8192,
    tails=8192,
    hostnames=16384,
    ips=4096,
    configs=16,
    resolutions=8192,
)
BOUNDS = {"old": OLD, "new": CacheBounds()}
REPEATED = 48


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


def _evaluator(bounds: CacheBounds, roots: Path) -> Evaluator:
    """What `build_evaluator` wires, with these bounds and no AIA (every chain here is complete)."""
    config = parse_config({"trust": {"ca_files": [str(roots)]}, "defaults": {"interval": "1h"}})
    caches = EvaluatorCaches(bounds=bounds)
    return Evaluator(config, load_trust_store([roots], False), caches, IntermediateFinder(caches=caches))


def _observations(leaves: Path, count: int) -> Any:
    now = dt.datetime.now(dt.UTC)
    with leaves.open() as lines:
        for index, line in zip(range(count), lines, strict=False):
            target = Target(file=f"/srv/certs/leaf-{index:06d}.pem")
            yield Observation(target=target, observed_at=now, chain=[line.strip()])


def _tables(caches: EvaluatorCaches) -> list[tuple[str, Callable[[], int], Callable[[], object]]]:
    """(name, entries, clear) of each table, in the order they are cleared."""

    def size(memo: Sized) -> Callable[[], int]:
        return lambda: len(memo)

    def lru(*memos: Any) -> Callable[[], int]:
        return lambda: sum(memo.cache_info().currsize for memo in memos)

    def clear_lru(*memos: Any) -> Callable[[], object]:
        return lambda: [memo.cache_clear() for memo in memos]

    c = caches
    return [
        ("resolutions", size(c.resolutions), c.resolutions.clear),
        ("verdicts", size(c.verdicts), c.verdicts.clear),
        ("answers", size(c.answers), c.answers.clear),
        ("tails", size(c.tails), c.tails.clear),
        ("signatures", size(c.signatures), c.signatures.clear),
        ("links", size(c.links), c.links.clear),
        ("leaves (parsed, by base64)", size(c.leaves), c.leaves.clear),
        ("authorities", size(c.authorities), c.authorities.clear),
        ("issuer names", size(c.issuer_names), c.issuer_names.clear),
        ("host names, IPs", lru(c.a_labels, c.names_match, c.ips), clear_lru(c.a_labels, c.names_match, c.ips)),
        ("TLS judgements, grades", lru(c.tls_judgements, c.grades), clear_lru(c.tls_judgements, c.grades)),
    ]


def child(args: argparse.Namespace) -> None:
    """One bounds set's RSS over the stream, or its tables; prints one JSON line."""
    configure_logging("warning", "console")
    evaluator = _evaluator(BOUNDS[args.child], args.roots)
    now = dt.datetime.now(dt.UTC)
    out: dict[str, Any] = {"bounds": args.child}
    if args.tables:
        tracemalloc.start()
        for index, observation in enumerate(_observations(args.leaves, args.table_leaves)):
            evaluator.evaluate(observation, now=now + dt.timedelta(microseconds=index))
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
        rows = []
        for name, entries, clear in _tables(evaluator.caches):
            count = entries()
            clear()
            gc.collect()
            freed, held = held - tracemalloc.get_traced_memory()[0], tracemalloc.get_traced_memory()[0]
            rows.append((name, count, freed))
        out["tables"] = rows
    else:
        gc.collect()
        out["rss_start"], rss = _rss_kib(), {}
        for index, observation in enumerate(_observations(args.leaves, args.checkpoints[-1])):
            evaluator.evaluate(observation, now=now + dt.timedelta(microseconds=index))
            if index + 1 in args.checkpoints:
                rss[index + 1] = _rss_kib()
        out.update(rss=rss, kept=len(evaluator.caches.leaves))
    print(json.dumps(out))


def speed(leaves: Path, roots: Path, *, count: int, seconds: float) -> dict[str, dict[str, float]]:
    """Evaluations per second of each bounds set, distinct leaves and the repeated estate, in blocks that
    alternate between the sets (and which goes first)."""
    evaluators = {name: _evaluator(bounds, roots) for name, bounds in BOUNDS.items()}
    now = dt.datetime.now(dt.UTC)
    calls = dict.fromkeys(BOUNDS, 0)
    spent = dict.fromkeys(BOUNDS, 0.0)

    def run(name: str, block: list[Observation]) -> None:
        started = time.process_time()  # CPU time: another tenant taking the core is not counted
        for index, observation in enumerate(block):
            evaluators[name].evaluate(observation, now=now + dt.timedelta(microseconds=index))
        calls[name] += len(block)
        spent[name] += time.process_time() - started

    stream = _observations(leaves, count)
    for turn in itertools.count():
        block = list(itertools.islice(stream, 500))
        if not block:
            break
        for name in list(BOUNDS)[:: 1 if turn % 2 else -1]:
            run(name, block)
    rates = {name: {"distinct": calls[name] / spent[name]} for name in BOUNDS}
    repeated = list(_observations(leaves, REPEATED))
    calls, spent = dict.fromkeys(BOUNDS, 0), dict.fromkeys(BOUNDS, 0.0)
    for turn in range(6):
        for name in list(BOUNDS)[:: 1 if turn % 2 else -1]:
            deadline = time.perf_counter() + seconds / 6
            while time.perf_counter() < deadline:
                run(name, repeated)
    for name in BOUNDS:
        rates[name]["repeated"] = calls[name] / spent[name]
    return rates


def _run_children(base: list[str], extra: list[str]) -> dict[str, dict[str, Any]]:
    """Both bounds sets at once, one child each; their JSON by bounds name."""
    procs = {
        name: subprocess.Popen([*base, "--child", name, *extra], stdout=subprocess.PIPE, text=True) for name in BOUNDS
    }
    results = {}
    for name, proc in procs.items():
        stdout, _ = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"the {name} child failed ({proc.returncode})")
        results[name] = json.loads(stdout.strip().splitlines()[-1])
    return results


def main() -> None:
    """Generate the estate, run the children, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leaves", type=int, default=100_000, help="distinct leaves in the stream")
    parser.add_argument("--checkpoints", default="20000,100000", help="RSS is read after this many leaves")
    parser.add_argument("--table-leaves", type=int, default=12_000, help="leaves for the tables' bytes (0: skip)")
    parser.add_argument("--speed-leaves", type=int, default=20_000, help="distinct leaves for the speed")
    parser.add_argument("--seconds", type=float, default=3.0, help="time for the repeated estate")
    parser.add_argument("--child", choices=BOUNDS, help=argparse.SUPPRESS)
    parser.add_argument("--tables", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--roots", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--leaves-file", dest="leaves_path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.checkpoints = [min(int(n), args.leaves) for n in args.checkpoints.split(",")]
    if args.child:
        args.leaves = args.leaves_path
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="certmon-evaluator-memory-") as scratch:
        roots_pem, leaves_txt = Path(scratch) / "roots.pem", Path(scratch) / "leaves.txt"
        count = max(args.leaves, args.table_leaves, args.speed_leaves)
        seconds = _issue(roots_pem, leaves_txt, count)
        print(f"estate: {count:,} distinct EC leaves under 4 roots ({seconds:.0f} s to issue); old and new bounds")
        base = [sys.executable, "-m", "benchmarks.evaluator_memory", "--roots", str(roots_pem)]
        base += ["--leaves-file", str(leaves_txt), "--checkpoints", ",".join(map(str, args.checkpoints))]
        base += ["--table-leaves", str(args.table_leaves)]
        if args.table_leaves:
            _print_tables(_run_children(base, ["--tables"]), args.table_leaves)
        _print_rss(_run_children(base, []), args.checkpoints)
        configure_logging("warning", "console")
        _print_speed(speed(leaves_txt, roots_pem, count=args.speed_leaves, seconds=args.seconds), args.speed_leaves)


def _issue(roots_pem: Path, leaves_txt: Path, count: int) -> float:
    """Write four roots and `count` distinct leaves under them (base64 DER, one a line); returns the seconds."""
    started = time.perf_counter()
    roots, factory = pki.make_roots(4), pki.LeafFactory()
    pki.write_roots(roots, roots_pem)
    with leaves_txt.open("w") as out:
        for index in range(count):
            pem = factory.leaf(roots[index % len(roots)], f"file-{index}.bench.test", days=365.0).decode()
            out.write("".join(pem.strip().splitlines()[1:-1]) + "\n")
    return time.perf_counter() - started


def _print_tables(results: dict[str, dict[str, Any]], leaves: int) -> None:
    print(f"\ntables after {leaves:,} distinct leaves (Python heap freed when cleared, tracemalloc)")
    print(
        f"{'table':<28} {'old entries':>11} {'old MB':>8} {'B/entry':>8}"
        f" {'new entries':>11} {'new MB':>8} {'B/entry':>8}"
    )
    for old, new in zip(results["old"]["tables"], results["new"]["tables"], strict=True):
        cells = [f"{n:>11,} {b / 1e6:>8.1f} {b / n if n else 0:>8,.0f}" for _, n, b in (old, new)]
        print(f"{old[0]:<28} {cells[0]} {cells[1]}")
    totals = [sum(row[2] for row in results[name]["tables"]) / 1e6 for name in ("old", "new")]
    print(f"{'all':<28} {'':>11} {totals[0]:>8.1f} {'':>8} {'':>11} {totals[1]:>8.1f}")


def _print_rss(results: dict[str, dict[str, Any]], checkpoints: list[int]) -> None:
    old, new = results["old"], results["new"]
    print(f"\n{'RSS, a stream of distinct leaves':<40} {'old bounds':>12} {'new bounds':>12} {'new/old':>8}")
    print(f"{'before the first, MiB':<40} {old['rss_start'] / 1024:>12.0f} {new['rss_start'] / 1024:>12.0f}")
    for n in checkpoints:
        a, b = old["rss"][str(n)] / 1024, new["rss"][str(n)] / 1024
        print(f"{f'after {n:,} leaves, MiB':<40} {a:>12.0f} {b:>12.0f} {b / a:>8.2f}")
    last = str(checkpoints[-1])
    per = [(r["rss"][last] - r["rss_start"]) / max(r["kept"], 1) for r in (old, new)]
    print(f"{'growth per leaf kept (all tables), KiB':<40} {per[0]:>12.1f} {per[1]:>12.1f}")
    print(f"{'leaves kept at the end':<40} {old['kept']:>12,} {new['kept']:>12,}")


def _print_speed(rates: dict[str, dict[str, float]], leaves: int) -> None:
    old, new = rates["old"], rates["new"]
    print(f"\n{'evaluations per second (one process)':<40} {'old bounds':>12} {'new bounds':>12} {'new/old':>8}")
    for key, label in (("distinct", f"{leaves:,} distinct leaves"), ("repeated", f"{REPEATED} leaves again and again")):
        print(f"{label:<40} {old[key]:>12,.0f} {new[key]:>12,.0f} {new[key] / old[key]:>8.2f}")


if __name__ == "__main__":
    main()
