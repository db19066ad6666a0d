"""Through the evaluator service: a chain completed by AIA from a local server, and owner-level policy."""

import base64
import datetime as dt
from typing import Any

from services.evaluator.adapters.aia import AiaFetcher, aia_policy
from services.evaluator.bootstrap import bootstrap
from services.evaluator.domain import TrustStore
from services.evaluator.domain.parse import fingerprint_of
from shared.broker import InMemoryBus
from shared.config import parse_config
from shared.config.schema import Scanning
from shared.events import Evaluation, NegotiatedTls, Observation, Target, TlsFacts, make_event
from shared.settings import Settings
from tests.integration.evaluator.aia.conftest import AiaServer
from tests.support.pki import NOW, Issued, make_ca, make_leaf
from tests.unit.evaluator.crafted_certificates import build_leaf

EVALUATIONS = "test.aia.evaluations"


async def _evaluate_once(config: dict[str, Any], root: Issued, chain: list[Issued], host: str, **kw: Any) -> Evaluation:
    """Bootstrap the evaluator on an in-memory bus, publish one observation of `host`, return the evaluation."""
    bus = InMemoryBus()
    bus.declare(EVALUATIONS, ["certificate.evaluated.v1"])
    service = bootstrap(
        Settings(),
        parse_config(config),
        bus=bus,
        pool=None,
        clock=lambda: NOW,
        trust=TrustStore(anchors=(root.cert,)),
        **kw,
    )
    await bus.start()
    await service.start()
    try:
        observation = Observation(
            target=Target(host=host, port=443),
            observed_at=NOW,
            chain=[base64.b64encode(c.der).decode() for c in chain],
            tls=TlsFacts(negotiated=NegotiatedTls(version="TLSv1.3", cipher_suite="TLS_AES_128_GCM_SHA256")),
        )
        await bus.publish(make_event("certificate.observed.v1", observation, source="certmon/scanner"))
        await bus.drain()
        (out,) = bus.pending(EVALUATIONS)
        assert not bus.dead_letters
        return Evaluation.model_validate(out.data)
    finally:
        await service.stop()
        await bus.close()


async def test_missing_intermediate_is_fetched_by_aia_and_the_chain_is_incomplete_but_trusted(
    aia_server: AiaServer,
) -> None:
    """Leaf-only chain with a caIssuers URL on 127.0.0.1: the fetched intermediate completes the verified path,
    the finding says the chain is incomplete and where the intermediate was found, and the grade is B."""
    root = make_ca("Depth AIA Root")
    intermediate = make_ca("Depth AIA Intermediate", issuer=root)
    url = aia_server.url("/depth-intermediate.der")
    aia_server.bodies["/depth-intermediate.der"] = intermediate.der
    leaf = build_leaf(intermediate, "aia.example", aia_url=url)
    fetcher = AiaFetcher(policy=aia_policy(Scanning(allow=["127.0.0.1/32"])), timeout=2)
    evaluation = await _evaluate_once({}, root, [leaf], "aia.example", aia=fetcher)
    assert evaluation.chain.trusted is True and evaluation.chain.complete is False
    assert evaluation.chain.verified_path == [fingerprint_of(c.der) for c in (leaf, intermediate, root)]
    (incomplete,) = [f for f in evaluation.findings if f.code == "chain.incomplete"]
    assert incomplete.severity == "critical"
    assert url in incomplete.message
    assert evaluation.security is not None and evaluation.security.grade == "B"
    assert aia_server.hits["/depth-intermediate.der"] == 1


async def test_aia_on_loopback_is_not_fetched_by_default(aia_server: AiaServer) -> None:
    """With the default address policy the loopback URL is never requested: incomplete, untrusted, grade F."""
    root = make_ca("Depth Denied Root")
    intermediate = make_ca("Depth Denied Intermediate", issuer=root)
    aia_server.bodies["/denied.der"] = intermediate.der
    leaf = build_leaf(intermediate, "denied.example", aia_url=aia_server.url("/denied.der"))
    evaluation = await _evaluate_once({}, root, [leaf], "denied.example")
    assert evaluation.chain.trusted is False
    assert "chain.incomplete" in {f.code for f in evaluation.findings}
    assert evaluation.security is not None and evaluation.security.grade == "F"
    assert aia_server.hits == {}


async def test_owner_level_severity_changes_the_alarm_level() -> None:
    """An owner's `severities: {expiry.within_30_days: critical}` raises a 20-days-left leaf to critical."""
    root = make_ca("Depth Owner Root")
    intermediate = make_ca("Depth Owner Intermediate", issuer=root)
    leaf = make_leaf(intermediate, ("owned.example",), not_after=NOW + dt.timedelta(days=20))
    owned = {
        "owners": {"payments": {"email": ["pay@example.com"], "severities": {"expiry.within_30_days": "critical"}}},
        "channels": {"email": {"from": "certmon@example.com", "host": "127.0.0.1"}},
        "certificates": [{"match": {"san": "owned.example"}, "owner": "payments"}],
    }
    evaluation = await _evaluate_once(owned, root, [leaf, intermediate], "owned.example")
    (expiring,) = [f for f in evaluation.findings if f.code == "expiry.within_30_days"]
    assert (expiring.severity, evaluation.alarm.level) == ("critical", "critical")
    plain = await _evaluate_once({}, root, [leaf, intermediate], "owned.example")
    assert plain.alarm.level == "warning"
