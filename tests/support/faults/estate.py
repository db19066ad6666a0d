"""The watched estate of the fault harness: certificate files and TLS endpoints whose certificates change during
the run, so that alarms are raised, changed and resolved while faults happen.

Every target has one certificate per level, all from one CA the config trusts: `critical` expires in 3 days,
`warning` in 20, `ok` in 200 (the default thresholds: critical under 7 days, warning under 30). A file target can
also go `missing` (deleted: an unreachable target, warning and then critical after three failures). Files are
replaced atomically (written beside, then renamed), so the scanner never reads half a certificate; an endpoint
loads the new chain into its server context, which serves it from the next handshake on."""

import contextlib
import datetime as dt
import os
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import hashes

from tests.support.pki import Issued, make_ca, make_leaf
from tests.support.tls_server import server_context, tls_server

State = Literal["critical", "warning", "ok", "missing"]
DAYS_LEFT: dict[State, int] = {"critical": 3, "warning": 20, "ok": 200}
#: The expiry level each state leaves its certificate's alarm at, once observed ("missing": the reachability alarm).
LEVELS: dict[State, str] = {"critical": "critical", "warning": "warning", "ok": "ok", "missing": "critical"}


@dataclass
class Target:
    """One watched thing: a certificate file (`path`) or a TLS endpoint (`context`, `port`), its certificates by
    state and the state it is in."""

    name: str
    certificates: dict[State, Issued]
    state: State = "ok"
    path: Path | None = None
    context: ssl.SSLContext | None = None
    port: int = 0
    changes: int = 0

    @property
    def states(self) -> tuple[State, ...]:
        """The states this target can be put in (an endpoint cannot go missing: it would stop answering)."""
        return ("critical", "warning", "ok", "missing") if self.path is not None else ("critical", "warning", "ok")

    @property
    def key(self) -> str:
        """The target's key as the services name it (`file:PATH` or `host:port`)."""
        return f"file:{self.path}" if self.path is not None else f"127.0.0.1:{self.port}"

    def fingerprint(self, state: State) -> str:
        """The SHA-256 fingerprint (hex) of the certificate served in `state` ('' when missing)."""
        if state == "missing":
            return ""
        return self.certificates[state].cert.fingerprint(hashes.SHA256()).hex()

    def config_entry(self, interval: str) -> str:
        """The target's line of `certmon.yaml`."""
        if self.path is not None:
            return f"{{file: {self.path}, interval: {interval}}}"
        return f"{{host: 127.0.0.1, port: {self.port}, interval: {interval}}}"


@dataclass
class Estate:
    """Every target, and the CA file the config trusts."""

    ca_file: Path
    targets: list[Target] = field(default_factory=list)

    def put(self, target: Target, state: State) -> None:
        """Make `target` serve the certificate of `state` (or disappear)."""
        target.state, target.changes = state, target.changes + 1
        if target.path is not None:
            if state == "missing":
                target.path.unlink(missing_ok=True)
            else:
                staged = target.path.with_suffix(".new")
                staged.write_bytes(target.certificates[state].pem)
                os.replace(staged, target.path)
        else:
            assert target.context is not None
            cert, key = _write_pair(self.ca_file.parent, target.name, target.certificates[state])
            target.context.load_cert_chain(cert, key)

    @property
    def changes(self) -> int:
        """Certificate changes made so far (the initial ones included)."""
        return sum(target.changes for target in self.targets)


def _write_pair(directory: Path, name: str, leaf: Issued) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    cert.write_bytes(leaf.pem)
    key.write_bytes(leaf.key_pem)
    return cert, key


def _certificates(ca: Issued, name: str, now: dt.datetime) -> dict[State, Issued]:
    return {
        state: make_leaf(ca, [name], not_before=now - dt.timedelta(days=10), not_after=now + dt.timedelta(days=days))
        for state, days in DAYS_LEFT.items()
    }


@contextlib.asynccontextmanager
async def running_estate(directory: Path, *, files: int, endpoints: int) -> AsyncIterator[Estate]:
    """`files` certificate files and `endpoints` TLS endpoints in `directory`, all `ok` at first."""
    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (set-up, before anything runs)
    now = dt.datetime.now(dt.UTC)
    ca = make_ca("certmon faults CA", not_before=now - dt.timedelta(days=100))
    estate = Estate(directory / "ca.pem")
    estate.ca_file.write_bytes(ca.pem)
    for index in range(files):
        name = f"file{index}.faults.test"
        target = Target(name, _certificates(ca, name, now), path=directory / f"{name}.pem")
        estate.put(target, "ok")
        estate.targets.append(target)
    async with contextlib.AsyncExitStack() as stack:
        for index in range(endpoints):
            target = Target(f"tls{index}", _certificates(ca, "127.0.0.1", now))
            cert, key = _write_pair(directory, target.name, target.certificates["ok"])
            target.context = server_context(cert, key)
            target.port = await stack.enter_async_context(tls_server(target.context))
            target.changes = 1
            estate.targets.append(target)
        yield estate
