"""The composition root: which services a process runs, in an order that never loses an event (consumers
downstream first, producers last), on one bus and one database."""

from collections.abc import Sequence

import asyncpg

from services import START_ORDER
from services.alarmer.bootstrap import bootstrap as alarmer_bootstrap
from services.evaluator.bootstrap import bootstrap as evaluator_bootstrap
from services.notifier.bootstrap import bootstrap as notifier_bootstrap
from services.reporter.bootstrap import bootstrap as reporter_bootstrap
from services.scanner.bootstrap import bootstrap as scanner_bootstrap
from shared.broker import Bus
from shared.clock import Clock, utc_now
from shared.config import CertmonConfig
from shared.lifecycle import ServiceBuilder, build
from shared.service import Service
from shared.settings import Settings

BUILDERS: dict[str, ServiceBuilder] = {
    "scanner": scanner_bootstrap,
    "evaluator": evaluator_bootstrap,
    "alarmer": alarmer_bootstrap,
    "notifier": notifier_bootstrap,
    "reporter": reporter_bootstrap,
}


def build_services(
    names: Sequence[str],
    settings: Settings,
    config: CertmonConfig,
    *,
    bus: Bus,
    pool: asyncpg.Pool | None,
    clock: Clock = utc_now,
) -> list[Service]:
    """Bootstrap the named services, in start order."""
    ordered = [BUILDERS[name] for name in START_ORDER if name in names]
    return build(ordered, settings, config, bus=bus, pool=pool, clock=clock)
