"""The compose stack's demo endpoints: with the root demo-tls writes, certmon judges the healthy one healthy."""

import datetime as dt
import json
from pathlib import Path

from services.demo.serve import write_endpoints
from tests.support.cli import run_certmon


async def test_the_written_root_anchors_the_demo_chains(tmp_path: Path) -> None:
    """The healthy chain is ok against the written root (untrusted without it); the others keep their problems."""
    root = tmp_path / "demo-root.pem"
    files = write_endpoints(tmp_path, "demo-tls", dt.datetime.now(dt.UTC), root)

    async def level(name: str, *trust: str) -> tuple[str, list[str]]:
        rc, out, err = await run_certmon("check", "--file", str(files[name][0]), *trust, "--json")
        assert rc in (0, 1, 2), err
        evaluation = json.loads(out)
        return evaluation["alarm"]["level"], [f["code"] for f in evaluation["findings"]]

    with_root = ("--ca-file", str(root))
    assert (await level("healthy", *with_root))[0] == "ok"
    untrusted, codes = await level("healthy")
    assert untrusted == "critical" and any(code.startswith("chain.") for code in codes)
    assert (await level("expiring", *with_root))[0] == "critical"
    assert "expiry.expired" in (await level("expired", *with_root))[1]
