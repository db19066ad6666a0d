"""The demo estate of `certmon run --demo`: local TLS endpoints with generated certificates (healthy,
expiring in 5 days, expired, self-signed) and a `certmon.yaml` that watches them, so a new user sees
alarms, notifications and the dashboard within seconds, offline."""

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from services.demo.endpoints import server_context, tls_server
from services.demo.pki import Issued, make_ca, make_leaf, write_chain
from shared.config import CertmonConfig, parse_config

DEMO_NAMES = ("healthy", "expiring", "expired", "self-signed")


def _leaves(now: dt.datetime, intermediate: Issued) -> dict[str, Issued]:
    day = dt.timedelta(days=1)
    return {
        "healthy": make_leaf(
            intermediate, ["127.0.0.1", "www.demo.test"], not_before=now - 10 * day, not_after=now + 200 * day
        ),
        "expiring": make_leaf(
            intermediate, ["127.0.0.1", "shop.demo.test"], not_before=now - 80 * day, not_after=now + 5 * day
        ),
        "expired": make_leaf(
            intermediate, ["127.0.0.1", "old.demo.test"], not_before=now - 100 * day, not_after=now - 10 * day
        ),
        "self-signed": make_leaf(
            None, ["127.0.0.1", "intranet.demo.test"], not_before=now - 10 * day, not_after=now + 300 * day
        ),
    }


def demo_config(ports: dict[str, int], ca_file: Path, base: dict[str, Any] | None = None) -> CertmonConfig:
    """The demo's `certmon.yaml`, merged over `base` (so a user's channels and owners still apply)."""
    doc: dict[str, Any] = dict(base or {})
    doc.setdefault("trust", {"ca_files": [str(ca_file)]})
    doc.setdefault("defaults", {"owner": "platform-team", "interval": "1m"})
    owners = doc.setdefault("owners", {})
    owners.setdefault("platform-team", {})
    owners.setdefault("shop-team", {})
    doc.setdefault("servers", {"demo-host": {"addresses": ["127.0.0.1/32"], "owner": "platform-team"}})
    doc.setdefault("certificates", [{"match": {"san": "shop.demo.test"}, "owner": "shop-team", "critical": True}])
    doc["targets"] = [*doc.get("targets", []), *({"host": "127.0.0.1", "port": p} for p in ports.values())]
    return parse_config(doc, "demo")


@contextlib.asynccontextmanager
async def demo_estate(
    directory: Path, *, now: dt.datetime, base: dict[str, Any] | None = None
) -> AsyncIterator[tuple[CertmonConfig, dict[str, int]]]:
    """Serve the four demo endpoints for the life of the block; yields the config and each one's port."""
    ca_file, files = _write_pki(directory, now)
    async with contextlib.AsyncExitStack() as stack:
        ports: dict[str, int] = {}
        for name, (cert, key) in files.items():
            ports[name] = await stack.enter_async_context(tls_server(server_context(cert, key)))
        yield demo_config(ports, ca_file, base), ports


def _write_pki(directory: Path, now: dt.datetime) -> tuple[Path, dict[str, tuple[Path, Path]]]:
    """Generate the demo PKI into `directory`: the root's PEM, and each endpoint's chain and key files."""
    directory.mkdir(parents=True, exist_ok=True)
    root = make_ca("certmon Demo Root", not_before=now - dt.timedelta(days=365))
    intermediate = make_ca("certmon Demo Issuing CA", issuer=root, not_before=now - dt.timedelta(days=365))
    ca_file = directory / "demo-root.pem"
    ca_file.write_bytes(root.pem)
    files = {
        name: write_chain(directory, name, leaf, *((intermediate,) if name != "self-signed" else ()))
        for name, leaf in _leaves(now, intermediate).items()
    }
    return ca_file, files
