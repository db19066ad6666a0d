"""`python -m benchmarks.evaluate.stage_loop STAGE CA_FILE DIR`: the bulk check's per-file work done up to one
stage, in process, for `instructions.py --stages` to count: the difference between two stages is what the
later one adds. Each stage does everything the one before it does, as the bulk check does it (every leaf new).
"""

import datetime as dt
import gc
import io
import sys
from collections.abc import Callable
from pathlib import Path

from services.commands.check.output import JsonWriter
from services.evaluator.adapters.trust import load_trust_store
from services.evaluator.domain import EvaluatorCaches, evaluate
from services.evaluator.domain.chain import analyse_chain
from services.evaluator.domain.parse import parse_chain, parse_presented
from services.evaluator.domain.verifier import verify_path
from services.evaluator.service_layer.evaluate_observation import evaluate_observation
from services.evaluator.service_layer.intermediate_finder import IntermediateFinder
from services.scanner.probes.files.source import expand_file_targets, observe_file
from shared.config import Policy, load_app_config
from shared.events import Evaluation, Observation, Target
from shared.logging import configure_logging
from shared.settings import Settings

#: The caches of the run, held to the end of the process and left there, as `certmon check` does.
_KEPT_TO_EXIT: list[object] = []

#: Stage name → what it adds, in order.
STAGES = (
    ("observe", "read the file, find its PEM blocks, build the observation"),
    ("parse leaf", "parse the new leaf (names, extensions, key, fingerprint)"),
    ("verify", "the verifier, as the bare loop runs it (intermediates parsed once, then found by content)"),
    ("chain verdict", "the walk, the chain findings and the `chain` section"),
    ("evaluate", "the leaf's facts, expiry, grade, policy, the evaluation model"),
    ("application", "the config's answer for the target, the intermediates finder"),
    ("json", "the JSON of the evaluation"),
)


def main() -> None:
    """Run every file of DIR through the stages up to STAGE (an index into `STAGES`)."""
    stage, ca_file, directory = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    configure_logging("warning", "json")
    config = load_app_config(Settings(), None)
    trust = load_trust_store([ca_file], replace_default=False)
    caches = EvaluatorCaches()
    finder = IntermediateFinder(caches=caches)
    writer = JsonWriter(io.BytesIO())
    now = dt.datetime.now(dt.UTC)
    policy = Policy()

    def verify(observation: Observation) -> None:
        certs, _ = parse_chain(observation.chain, caches)
        size = sum(c.size for c in certs)
        verify_path(certs[0], [c.cert for c in certs[1:]], now=now, trust=trust, chain_bytes=size, caches=caches)

    def chain_verdict(observation: Observation) -> None:
        analyse_chain(parse_chain(observation.chain, caches)[0], now=now, trust=trust, caches=caches)

    def application(observation: Observation) -> Evaluation:
        return evaluate_observation(observation, config=config, trust=trust, now=now, caches=caches, finder=finder)

    def json(observation: Observation) -> None:
        writer.write(application(observation))

    steps: list[Callable[[Observation], object]] = [
        lambda observation: None,
        lambda observation: parse_presented(observation.chain[0], caches),
        verify,
        chain_verdict,
        lambda observation: evaluate(observation, now=now, policy=policy, trust=trust, caches=caches),
        application,
        json,
    ]
    step = steps[stage]
    gc.disable()  # as `certmon check` runs
    for target in expand_file_targets(Target(file=str(directory))):
        step(observe_file(target, now=now))
    gc.freeze()  # as `certmon check` exits: no last collection over what the caches hold
    _KEPT_TO_EXIT.extend((caches, _KEPT_TO_EXIT))  # nor freed one by one as `main` returns


if __name__ == "__main__":
    main()
