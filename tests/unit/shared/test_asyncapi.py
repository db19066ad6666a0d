"""The published AsyncAPI document is generated from the models and kept current."""

from pathlib import Path

from shared.events import ROUTING_KEYS
from shared.events.asyncapi import asyncapi_document, render

DOC = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.yaml"


def test_committed_asyncapi_matches_the_models() -> None:
    """docs/asyncapi.yaml equals what the models generate (regenerate: python -m shared.events.asyncapi)."""
    assert DOC.read_text() == render()


def test_every_routing_key_has_a_channel_and_a_schema() -> None:
    """Each routing key is a channel on certmon.events whose message payload schema is defined."""
    doc = asyncapi_document()
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == set(ROUTING_KEYS)
    for message in doc["components"]["messages"].values():
        name = message["payload"]["$ref"].rsplit("/", 1)[1]
        assert name in doc["components"]["schemas"]
    evaluation = doc["components"]["schemas"]["Evaluation"]["properties"]
    assert {
        "target",
        "observed_at",
        "evaluated_at",
        "reachable",
        "error",
        "certificate",
        "chain",
        "tls",
        "expiry",
        "security",
        "findings",
        "alarm",
    } <= set(evaluation)
