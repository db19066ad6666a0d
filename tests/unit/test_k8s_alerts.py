"""deploy/k8s/base/alerts.yaml alerts on what the services export: a queue near or at its length limit, dead
letters, an outbox that does not drain. (test_k8s_manifests.py validates it against the PrometheusRule CRD.)"""

import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

import services.composition  # noqa: F401  (registers every service's metrics, as a process does)
from shared.broker.amqp import DEAD_LETTER_QUEUE

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "base" / "alerts.yaml"


def rules() -> dict[str, Any]:
    """The alerting rules by alert name."""
    document = yaml.safe_load(ALERTS.read_text())
    return {rule["alert"]: rule for group in document["spec"]["groups"] for rule in group["rules"]}


def test_the_backpressure_alerts_exist() -> None:
    """A queue near its limit and at it, dead letters, and an outbox backlog each have an alert with a severity."""
    alerts = rules()
    assert set(alerts) == {"CertmonQueueNearLimit", "CertmonQueueFull", "CertmonDeadLetters", "CertmonOutboxBacklog"}
    assert all(rule["labels"]["severity"] in {"warning", "critical"} for rule in alerts.values())


def test_every_metric_an_alert_reads_is_one_the_services_register() -> None:
    """A metric renamed in the code cannot leave an alert silently reading nothing."""
    registered = {family.name for family in REGISTRY.collect() if family.name.startswith("certmon_")}
    for name, rule in rules().items():
        used = set(re.findall(r"\bcertmon_[a-z_]+", rule["expr"]))
        assert used and used <= registered, f"{name}: {sorted(used - registered)}"


def test_the_dead_letter_alert_names_the_dead_letter_queue() -> None:
    """The dead-letter alert reads the queue the bus declares for dead letters."""
    assert f'queue="{DEAD_LETTER_QUEUE}"' in rules()["CertmonDeadLetters"]["expr"]
