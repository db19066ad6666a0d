"""`certmon check`: observe each target and evaluate it once, in-process, with no broker or database.

It calls the same functions the scanner and evaluator handlers call (observe, then evaluate under the
policy resolved from `certmon.yaml`); there is no queue between them because a one-shot check has nothing
to distribute or retry, and skipping the bus keeps process start and bulk checks fast.
"""

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

from services.evaluator import evaluate_observation
from services.evaluator.adapters.aia import AddressPolicy, AiaFetcher
from services.evaluator.adapters.trust import load_trust_store
from services.evaluator.domain import EvaluatorCaches
from services.evaluator.service_layer.intermediate_finder import IntermediateFinder
from services.scanner.domain.limits import ProbeLimits
from services.scanner.probes.files.source import expand_file_targets, observe_file
from services.scanner.service_layer.scan_limiter import ScanLimiter
from shared.clock import Clock, utc_now
from shared.config import CertmonConfig
from shared.config.schema import WELL_KNOWN_STARTTLS_PORTS
from shared.events import Evaluation, Observation, Target
from shared.events.target import Profile, Protocol


class TargetSyntaxError(ValueError):
    """A HOST[:PORT] argument that cannot be read."""


def parse_endpoint(
    text: str, *, protocol: Protocol | None = None, sni: str | None = None, profile: Profile = "expiry"
) -> Target:
    """`host`, `host:port`, `[v6]:port` or `v6` → a Target; well-known STARTTLS ports imply their protocol."""
    text = text.strip()
    if not text:
        raise TargetSyntaxError("empty target")
    host, port = text, 443
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise TargetSyntaxError(f"{text!r}: unclosed '[' in an IPv6 address")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise TargetSyntaxError(f"{text!r}: expected ':PORT' after ']'")
            port = _port(text, rest[1:])
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(text, port_text)
    if not host:
        raise TargetSyntaxError(f"{text!r}: no host")
    return Target(
        host=host, port=port, sni=sni, protocol=protocol or WELL_KNOWN_STARTTLS_PORTS.get(port, "tls"), profile=profile
    )


def _port(text: str, value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise TargetSyntaxError(f"{text!r}: port must be a number from 1 to 65535")
    return int(value)


async def check_targets(
    targets: Sequence[Target],
    sink: Callable[[Evaluation], None],
    *,
    config: CertmonConfig,
    limits: ProbeLimits,
    concurrency: int,
    caches: EvaluatorCaches,
    extra_ca_files: Sequence[Path] = (),
    clock: Clock = utc_now,
) -> None:
    """Observe and evaluate every target, concurrently but within the workers' total and per-host caps; directory
    targets are expanded into one target per certificate file. Each evaluation goes to `sink` (called from a
    worker thread) in the order the targets were given, and is not kept. Evaluation follows that order too, so
    the intermediates a target sends complete the chains of the targets after it, never of those before. `caches`
    are the run's memos, shared by every target (the caller builds one for the run, as a service's bootstrap does)."""
    trust = load_trust_store([*config.trust.ca_files, *extra_ca_files], replace_default=config.trust.replace_default)
    finder = IntermediateFinder(aia=AiaFetcher(policy=AddressPolicy.from_scanning(config.scanning)), caches=caches)
    limiter = ScanLimiter(total=concurrency, per_host=limits.per_host_concurrency)
    loop = asyncio.get_running_loop()

    async def observe_endpoint(target: Target) -> Observation:
        async with limiter.slot(target.host or ""):
            # The network probes load only when an endpoint is checked.
            from services.scanner.service_layer.observe import observe

            return await observe(target, now=clock(), limits=limits)

    expanded = [each for target in targets for each in expand_file_targets(target)]
    endpoints = {
        index: asyncio.run_coroutine_threadsafe(observe_endpoint(target), loop)
        for index, target in enumerate(expanded)
        if target.file is None
    }

    def evaluate_in_order() -> None:
        # One worker thread reads each file and evaluates it at once, then the next (a file costs less than a
        # thread hop, and a second pass over thousands of observations costs more than the reading), and takes
        # each endpoint's observation as it arrives: targets are evaluated in the order given, as the intermediates
        # one chain teaches may complete the next, while the event loop stays free for the handshakes.
        for index, target in enumerate(expanded):
            pending = endpoints.get(index)
            observation = observe_file(target, now=clock(), limits=limits) if pending is None else pending.result()
            evaluation = evaluate_observation(
                observation, config=config, trust=trust, now=clock(), caches=caches, finder=finder
            )
            sink(evaluation)

    try:
        await asyncio.to_thread(evaluate_in_order)
    finally:
        for pending in endpoints.values():
            pending.cancel()
