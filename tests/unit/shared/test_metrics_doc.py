"""docs/metrics.md lists exactly the `certmon_*` metrics the services register, each with its type."""

import re
from pathlib import Path

from prometheus_client import REGISTRY

import services.composition  # noqa: F401  (registers every service's metrics, as a process does)

DOCS = Path(__file__).resolve().parents[3] / "docs"
DOC = DOCS / "metrics.md"
#: The reporter's certificate gauges are documented on a page of their own.
ESTATE_DOC = DOCS / "estate-metrics.md"


def test_every_registered_metric_is_documented_with_its_type() -> None:
    """Each family in the default registry appears once in the doc's tables, under its exposed name and type."""
    registered = {
        (family.name + "_total" if family.type == "counter" else family.name, family.type)
        for family in REGISTRY.collect()
        if family.name.startswith("certmon_")
    }
    documented = set(re.findall(r"^\| `(certmon_[a-z_]+)` \| (counter|gauge|histogram) \|", DOC.read_text(), re.M))
    estate = ESTATE_DOC.read_text() if ESTATE_DOC.exists() else ""
    assert documented == {(name, kind) for name, kind in registered if f"`{name}`" not in estate}
