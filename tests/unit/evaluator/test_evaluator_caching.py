"""The evaluator's caches change only its speed: a warm evaluation equals a cold one, in any order."""

import datetime as dt

from services.evaluator.domain import TrustStore
from services.evaluator.domain.parse import clear_cache
from shared.events import Observation
from tests.support.pki import NOW, Issued, make_leaf
from tests.unit.evaluator.evaluator_support import judge, observation


def _cases(intermediate: Issued, rogue_root: Issued) -> list[Observation]:
    healthy = make_leaf(intermediate, ["localhost"])
    expired = make_leaf(
        intermediate, ["localhost"], not_before=NOW - dt.timedelta(days=90), not_after=NOW - dt.timedelta(days=2)
    )
    return [
        observation(healthy, intermediate),
        observation(healthy, intermediate, host="other.example"),  # same chain, different name
        observation(intermediate, healthy),  # same certificates, wrong order
        observation(expired, intermediate),
        observation(make_leaf(None, ["localhost"])),
        observation(make_leaf(rogue_root, ["localhost"]), rogue_root),
        observation(healthy),  # the intermediate missing
    ]


def test_warm_results_equal_cold_results_in_any_order(
    intermediate: Issued, rogue_root: Issued, trust: TrustStore
) -> None:
    """Evaluating after the caches were filled by other chains gives exactly what a cold evaluation gives."""
    cases = _cases(intermediate, rogue_root)
    cold = []
    for obs in cases:
        clear_cache()
        cold.append(judge(obs, trust).model_dump(mode="json"))
    warm_forward = [judge(obs, trust).model_dump(mode="json") for obs in cases]
    warm_backward = [judge(obs, trust).model_dump(mode="json") for obs in reversed(cases)][::-1]
    assert warm_forward == cold
    assert warm_backward == cold
    later = NOW + dt.timedelta(days=400)  # the same chains at another time: nothing time-dependent was cached
    assert [judge(o, trust, now=later).alarm.level for o in cases[:1]] == ["critical"]
