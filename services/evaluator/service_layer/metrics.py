"""The evaluator's own metrics: evaluations by the alarm level they came to, and how long each took."""

import time
from collections.abc import Callable

from prometheus_client import Counter, Histogram

from shared.events.evaluation import Evaluation

EVALUATIONS = Counter("certmon_evaluations", "Observations evaluated, by the alarm level they came to.", ["level"])
EVALUATION_DURATION = Histogram(
    "certmon_evaluation_duration_seconds",
    "How long evaluating one observation took (policy, chain, grade), intermediates looked up included.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

LEVELS = ("ok", "info", "warning", "critical")


def start_series() -> None:
    """Start every level's series at zero (called once the evaluator is wired)."""
    for level in LEVELS:
        EVALUATIONS.labels(level)


def measured(evaluate: Callable[[], Evaluation]) -> Evaluation:
    """Run one evaluation, timing it and counting it by its level (a failed one is timed, not counted)."""
    started = time.perf_counter()
    try:
        evaluation = evaluate()
    finally:
        EVALUATION_DURATION.observe(time.perf_counter() - started)
    EVALUATIONS.labels(evaluation.alarm.level).inc()
    return evaluation
