"""The event envelope and its registry."""

from datetime import UTC, datetime

import pytest

from shared.broker import topic_matches
from shared.events import ROUTING_KEYS, CloudEvent, Observation, ScanRequested, Target, derived_id, make_event


def test_envelope_round_trips_through_json() -> None:
    """An event survives JSON and its payload validates back to the same model."""
    data = ScanRequested(target=Target(host="a.example", port=8443), due_at=datetime(2026, 1, 1, tzinfo=UTC))
    event = make_event("scan.requested.v1", data, source="certmon/test")
    back = CloudEvent.model_validate_json(event.model_dump_json())
    assert back.type == "io.certmon.scan.requested.v1"
    assert back.routing_key == "scan.requested.v1"
    assert back.specversion == "1.0"
    assert back.payload() == data


def test_payload_must_match_routing_key() -> None:
    """Publishing an observation under the scan routing key is a programming error caught at once."""
    observation = Observation(target=Target(host="a"), observed_at=datetime.now(UTC))
    with pytest.raises(TypeError):
        make_event("scan.requested.v1", observation, source="t")


def test_derived_ids_are_deterministic() -> None:
    """The same inputs give the same event id (so redeliveries deduplicate downstream)."""
    assert derived_id("a", "b") == derived_id("a", "b") != derived_id("a", "c")


def test_every_routing_key_is_versioned() -> None:
    """Routing keys carry their version."""
    assert all(key.rsplit(".", 1)[1].startswith("v") for key in ROUTING_KEYS)


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("alarm.*.v1", "alarm.raised.v1", True),
        ("alarm.*.v1", "alarm.raised.v2", False),
        ("#", "a.b.c", True),
        ("scan.#", "scan.requested.v1", True),
        ("scan.#", "scan", True),
        ("*.requested.v1", "scan.requested.v1", True),
        ("certificate.observed.v1", "certificate.evaluated.v1", False),
    ],
)
def test_topic_matching(pattern: str, key: str, matches: bool) -> None:
    """AMQP topic semantics: `*` is one word, `#` any number."""
    assert topic_matches(pattern, key) is matches


def test_target_keys() -> None:
    """Target keys name endpoints, SNI overrides, STARTTLS protocols and files distinctly."""
    assert Target(host="a.example").key == "a.example:443"
    assert Target(host="10.0.0.1", sni="a.example").key == "10.0.0.1:443/a.example"
    assert Target(host="mail.example", port=587, protocol="smtp").key == "smtp://mail.example:587"
    assert Target(file="/etc/x.pem").key == "file:/etc/x.pem"
