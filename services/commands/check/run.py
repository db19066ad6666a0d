"""`certmon check`: observe each target and evaluate it once, in-process, with no broker or database.

It observes and evaluates through the same parts the scanner and evaluator handlers use, built by the services'
bootstraps (`build_observer`, `build_evaluator`); there is no queue between them because a one-shot check has nothing
to distribute or retry, and skipping the bus keeps process start and bulk checks fast.
"""

import asyncio
from collections.abc import Callable, Sequence

from services.evaluator.service_layer.evaluate_observation import Evaluator
from services.scanner.probes.files.source import expand_file_targets, observe_file
from services.scanner.service_layer.observe import Observer
from shared.clock import Clock, utc_now
from shared.config.schema import WELL_KNOWN_STARTTLS_PORTS
from shared.events import Evaluation, Target
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
    observer: Observer,
    evaluator: Evaluator,
    clock: Clock = utc_now,
) -> None:
    """Observe and evaluate every target, concurrently but within the observer's total and per-host caps; directory
    targets are expanded into one target per certificate file. Each evaluation goes to `sink` (called from a
    worker thread) in the order the targets were given, and is not kept. Evaluation follows that order too, so
    the intermediates a target sends complete the chains of the targets after it, never of those before. The
    observer and the evaluator are the services' own (`build_observer`, `build_evaluator`), built for the run."""
    loop = asyncio.get_running_loop()
    expanded = [each for target in targets for each in expand_file_targets(target)]
    endpoints = {
        index: asyncio.run_coroutine_threadsafe(observer.observe(target, now=clock()), loop)
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
            if pending is None:
                observation = observe_file(target, now=clock(), limits=observer.limits)
            else:
                observation = pending.result()
            evaluation = evaluator.evaluate(observation, now=clock())
            sink(evaluation)

    try:
        await asyncio.to_thread(evaluate_in_order)
    finally:
        for pending in endpoints.values():
            pending.cancel()
