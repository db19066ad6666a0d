"""The certmon command run as a user runs it: a subprocess of this interpreter, bounded in time."""

import asyncio
import os
import sys
from collections.abc import Mapping

CERTMON = [sys.executable, "-m", "services.cli"]


async def run_certmon(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60, inherit_settings: bool = True
) -> tuple[int, str, str]:
    """Run `certmon ARGS` with `env` over this process's environment (without its CERTMON_ settings unless
    `inherit_settings`), killed after `timeout` seconds; returns (exit code, stdout, stderr)."""
    base = {k: v for k, v in os.environ.items() if inherit_settings or not k.startswith("CERTMON_")}
    process = await asyncio.create_subprocess_exec(
        *CERTMON,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**base, "CERTMON_LOG_LEVEL": "warning", **(env or {})},
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
