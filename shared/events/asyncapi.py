"""The AsyncAPI 3.0 document of certmon's events, generated from the pydantic models.

`python -m shared.events.asyncapi > docs/asyncapi.yaml` regenerates the committed file; a test fails
when the two differ, so the published contract cannot drift from the code.
"""

from typing import Any

import yaml
from pydantic.json_schema import models_json_schema

from shared.broker.bus import EXCHANGE
from shared.events.envelope import ROUTING_KEYS, TYPE_PREFIX

#: Who produces each routing key (documentation only).
PRODUCERS = {
    "scan.requested.v1": "scheduler",
    "certificate.observed.v1": "scanner",
    "certificate.evaluated.v1": "evaluator",
    "alarm.raised.v1": "alarmer",
    "alarm.changed.v1": "alarmer",
    "alarm.reminded.v1": "alarmer",
    "alarm.acknowledged.v1": "alarmer",
    "alarm.resolved.v1": "alarmer",
    "acknowledgement.requested.v1": "reporter (API and action links)",
    "notification.sent.v1": "notifier",
    "notification.failed.v1": "notifier",
    "report.published.v1": "reporter",
}


def _channel_id(routing_key: str) -> str:
    words = routing_key.replace(".", " ").replace("-", " ").split()
    return words[0] + "".join(w.capitalize() for w in words[1:])


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document as a mapping."""
    models = sorted(set(ROUTING_KEYS.values()), key=lambda m: m.__name__)
    _, schema = models_json_schema([(m, "serialization") for m in models], ref_template="#/components/schemas/{model}")
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for key, model in ROUTING_KEYS.items():
        cid = _channel_id(key)
        messages[cid] = {
            "name": TYPE_PREFIX + key,
            "contentType": "application/cloudevents+json",
            "summary": f"A CloudEvents 1.0 envelope whose `data` is {model.__name__}; "
            f"produced by the {PRODUCERS[key]}.",
            "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
        }
        channels[cid] = {
            "address": key,
            "messages": {cid: {"$ref": f"#/components/messages/{cid}"}},
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {"name": EXCHANGE, "type": "topic", "durable": True, "autoDelete": False, "vhost": "/"},
                    "bindingVersion": "0.3.0",
                }
            },
        }
        operations[f"publish_{cid}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{cid}"},
            "bindings": {"amqp": {"deliveryMode": 2, "mandatory": True, "bindingVersion": "0.3.0"}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "certmon events",
            "version": "1.0.0",
            "description": "Events on the durable topic exchange `certmon.events`. The routing key carries the "
            "version; fields are only ever added within a version.",
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schema.get("$defs", {})},
    }


def render() -> str:
    """The document as YAML text."""
    return yaml.safe_dump(asyncapi_document(), sort_keys=False, width=120)


if __name__ == "__main__":
    print(render(), end="")
