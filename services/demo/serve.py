"""`python -m services.demo.serve HOSTNAME [ROOT_PEM]`: the demo estate's endpoints on all interfaces, for
docker-compose.

Certificates for HOSTNAME are generated at start (healthy, expiring in 5 days, expired, self-signed) under a
private demo root, and served on ports 8443 to 8446 until the process is stopped, so the compose stack's scanner
has something real to watch. The root is written to ROOT_PEM when given (a volume the evaluator mounts and
`trust.ca_files` names), so the healthy endpoint is judged healthy; without it nothing trusts the root.
"""

import asyncio
import contextlib
import datetime as dt
import sys
import tempfile
from pathlib import Path

from services.demo.endpoints import server_context, tls_server
from services.demo.pki import make_ca, make_leaf, write_chain

#: Each demo endpoint's port, as deploy/compose/certmon.yaml lists them.
PORTS = {"healthy": 8443, "expiring": 8444, "expired": 8445, "self-signed": 8446}


def write_endpoints(
    directory: Path, hostname: str, now: dt.datetime, root_pem: Path | None = None
) -> dict[str, tuple[Path, Path]]:
    """Write each endpoint's chain and key under `directory` (and the root to `root_pem`); returns them by name."""
    day = dt.timedelta(days=1)
    root = make_ca("certmon Demo Root", not_before=now - 365 * day)
    if root_pem is not None:
        root_pem.write_bytes(root.pem)
    issuing = make_ca("certmon Demo Issuing CA", issuer=root, not_before=now - 365 * day)
    lifetimes = {
        "healthy": (now - 10 * day, now + 200 * day),
        "expiring": (now - 80 * day, now + 5 * day),
        "expired": (now - 100 * day, now - 10 * day),
        "self-signed": (now - 10 * day, now + 300 * day),
    }
    files = {}
    for name, (not_before, not_after) in lifetimes.items():
        issuer = None if name == "self-signed" else issuing
        leaf = make_leaf(issuer, [hostname], not_before=not_before, not_after=not_after)
        files[name] = write_chain(directory, name, leaf, *((issuing,) if issuer else ()))
    return files


async def serve(hostname: str, host: str = "0.0.0.0", root_pem: Path | None = None) -> None:
    """Serve the demo endpoints for `hostname` on `host` until cancelled, writing their root to `root_pem`."""
    with tempfile.TemporaryDirectory(prefix="certmon-demo-") as scratch:
        files = write_endpoints(Path(scratch), hostname, dt.datetime.now(dt.UTC), root_pem)
        async with contextlib.AsyncExitStack() as stack:
            for name, (cert, key) in files.items():
                await stack.enter_async_context(tls_server(server_context(cert, key), host, PORTS[name]))
            print(f"demo endpoints for {hostname}: {PORTS}", flush=True)
            await asyncio.Event().wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve(
                sys.argv[1] if len(sys.argv) > 1 else "localhost",
                root_pem=Path(sys.argv[2]) if len(sys.argv) > 2 else None,
            )
        )
