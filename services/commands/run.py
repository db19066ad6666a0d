"""`certmon run` (all five services, optionally with the demo estate) and `certmon <service>` (one)."""

import contextlib
import functools
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from services import START_ORDER
from services.composition import BUILDERS
from shared.clock import utc_now
from shared.config import CertmonConfig
from shared.lifecycle import ServiceBuilder, ShutdownSignal, serve
from shared.runtime import Infrastructure
from shared.service import Service
from shared.settings import Settings


async def run(
    settings: Settings,
    config: CertmonConfig,
    names: Sequence[str],
    *,
    demo: bool,
    exit_after: float | None,
    embedded: bool = True,
) -> None:
    """Run the named services until SIGINT/SIGTERM or `exit_after` seconds; a broker or database that does not
    answer yet is waited for."""
    console = Console(stderr=True)
    async with contextlib.AsyncExitStack() as stack:
        shutdown = stack.enter_context(ShutdownSignal())
        if demo:
            from services.demo.estate import demo_estate

            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="certmon-demo-")))
            config, ports = await stack.enter_async_context(
                demo_estate(
                    scratch / "endpoints",
                    now=utc_now(),
                    base=config.model_dump(mode="json", by_alias=True, exclude_defaults=True),
                )
            )
            if settings.database_url is None:  # a fresh embedded database, so old demo runs leave nothing behind
                settings = settings.model_copy(update={"data_dir": scratch / "data"})
            console.print(f"[bold]demo endpoints[/bold] on 127.0.0.1: {ports}")
        stateless = set(names) == {"evaluator"}  # the evaluator alone keeps no state

        def started(infra: Infrastructure, services: list[Service]) -> None:
            mode = "in-memory bus" if infra.embedded_bus else "RabbitMQ"
            db = "embedded PostgreSQL" if infra.embedded_database else "PostgreSQL"
            console.print(
                f"[green]certmon running[/green] {', '.join(s.name for s in services)} on {mode} and {db}; "
                f"{len(config.targets)} targets"
                + (f"; dashboard http://{settings.http_host}:{settings.http_port}/" if "reporter" in names else "")
            )

        await serve(
            [_builder(name) for name in START_ORDER if name in names],
            settings,
            config,
            shutdown,
            allow_embedded=embedded,
            needs_database=not stateless,
            health_server=True,  # from the start; the reporter's dashboard joins it on the same port once started
            serves_app="reporter" in names,
            exit_after=exit_after,
            on_started=started,
        )


def _builder(name: str) -> ServiceBuilder:
    """The service's bootstrap as a process runs it: the reporter binds no port of its own, the process serves
    its app (`shared.lifecycle.serve`)."""
    builder = BUILDERS[name]
    return functools.partial(builder, serve_http=False) if name == "reporter" else builder
