"""In-process rates: `evaluate_observation` versus the bare `cryptography` calls, on the same chains."""

import datetime as dt
import time
from collections.abc import Callable

from cryptography import x509
from cryptography.x509.verification import PolicyBuilder

from benchmarks.evaluate.chains import Estate
from services.evaluator import evaluate_observation
from services.evaluator.domain import EvaluatorCaches
from shared.config import parse_config

#: Rounds of (bare, evaluate) blocks, interleaved so drift in the machine's speed hits both alike.
ROUNDS = 3


def _rate(step: Callable[[int], object], seconds: float) -> tuple[int, float]:
    """Run `step(i)` for about `seconds`; returns (calls, elapsed)."""
    calls, started = 0, time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(50):
            step(calls)
            calls += 1
        now = time.perf_counter()
        if now >= deadline:
            return calls, now - started


def measure_inprocess(estate: Estate, now: dt.datetime, *, seconds: float) -> tuple[float, float]:
    """Print and return (evaluations/s, bare verifications/s)."""
    config = parse_config({})
    stores = list(estate.stores.values())
    observations = [chain.observation(now) for chain in estate.chains]
    subjects = [x509.DNSName(chain.host) for chain in estate.chains]
    n, s = len(estate.chains), len(stores)

    def when(i: int) -> dt.datetime:
        return now + dt.timedelta(microseconds=i)  # `now` moves, as it does in a running service

    def bare(i: int) -> None:
        chain = estate.chains[i % n]
        leaf = x509.load_der_x509_certificate(chain.ders[0])
        intermediates = [x509.load_der_x509_certificate(der) for der in chain.ders[1:]]
        store = stores[(i // n) % s].store
        assert store is not None
        verifier = PolicyBuilder().store(store).time(when(i)).build_server_verifier(subjects[i % n])
        verifier.verify(leaf, intermediates)

    caches = EvaluatorCaches()  # one set for the run, as a service's bootstrap builds it

    def evaluate(i: int) -> None:
        evaluate_observation(observations[i % n], config=config, trust=stores[(i // n) % s], now=when(i), caches=caches)

    def evaluate_cold(i: int) -> None:
        # A new set before each: every certificate unseen, the first scan of an estate.
        evaluate_observation(
            observations[i % n], config=config, trust=stores[(i // n) % s], now=when(i), caches=EvaluatorCaches()
        )

    steps = (("bare", bare), ("evaluate", evaluate), ("cold", evaluate_cold))
    for _, step in steps:  # warm-up: imports, first-use caches
        for i in range(2 * n * s):
            step(i)
    totals = {name: [0, 0.0] for name, _ in steps}
    for _ in range(ROUNDS):
        for name, step in steps:
            calls, elapsed = _rate(step, seconds / ROUNDS)
            totals[name][0] += calls
            totals[name][1] += elapsed
    bare_rate = totals["bare"][0] / totals["bare"][1]
    eval_rate = totals["evaluate"][0] / totals["evaluate"][1]
    cold_rate = totals["cold"][0] / totals["cold"][1]
    print()
    print(f"{'in process, one core':<44} {'per second':>12} {'µs each':>10}")
    print(f"{'bare cryptography (parse DER + verify)':<44} {bare_rate:>12,.0f} {1e6 / bare_rate:>10.1f}")
    print(f"{'certmon evaluate_observation, chains seen':<44} {eval_rate:>12,.0f} {1e6 / eval_rate:>10.1f}")
    print(f"{'ratio (evaluate cost / bare cost)':<44} {bare_rate / eval_rate:>12.2f}")
    print(f"{'certmon, every memo cleared before each':<44} {cold_rate:>12,.0f} {1e6 / cold_rate:>10.1f}")
    print(f"{'ratio, cold':<44} {bare_rate / cold_rate:>12.2f}")
    return eval_rate, bare_rate
