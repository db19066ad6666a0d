"""Debian's net-snmp `snmptrapd` for tests, on 127.0.0.1, printing what it receives by CERTMON-MIB names.

`start_snmptrapd(folder, community=..., users=[...])` writes an `snmptrapd.conf` (a v2c community, v3 users
registered under the sender's engine id), copies the IETF base MIBs from Debian's erlang-snmp beside it, starts
`snmptrapd -f -Lo -C` on a free UDP port, waits until it is ready and collects its output lines. It stops when the
`with` block ends, and kills itself after `lifetime` seconds whatever the test does.

The tools are optional on a developer's machine (the tests skip, saying which package to install) and required
on CI (`CI=true`: the tests fail instead).
"""

import asyncio
import glob
import itertools
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from services.notifier.adapters.snmp import MIB_MODULE, mib_directory

#: The IETF modules CERTMON-MIB imports, and SNMPv2-MIB for sysUpTime and snmpTrapOID by name.
BASE_MIB_MODULES = ("SNMPv2-SMI", "SNMPv2-TC", "SNMPv2-CONF", "SNMPv2-MIB", "SNMP-FRAMEWORK-MIB", "INET-ADDRESS-MIB")
_ERLANG_MIBS = "/usr/lib/erlang/lib/snmp-*/mibs"
_READY_LINE = "NET-SNMP version"


def require_tool(command: str, package: str) -> str:
    """The path of `command`; skips the test when it is missing, or fails it on CI (`CI=true`)."""
    path = shutil.which(command)
    if path is None:
        message = f"{command} is not installed (apt-get install -y {package})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI=true requires it")
        pytest.skip(message)
    return path


def copy_base_mibs(folder: Path) -> Path:
    """Copy the IETF base MIB modules shipped by Debian's erlang-snmp into `folder` as `<MODULE>.txt`."""
    folder.mkdir(parents=True, exist_ok=True)
    for module in BASE_MIB_MODULES:
        found = sorted(glob.glob(f"{_ERLANG_MIBS}/{module}.mib"))
        if not found:
            message = f"{module}.mib not found under {_ERLANG_MIBS} (apt-get install -y erlang-snmp)"
            if os.environ.get("CI") == "true":
                pytest.fail(f"{message}; CI=true requires it")
            pytest.skip(message)
        shutil.copyfile(found[-1], folder / f"{module}.txt")
    return folder


@dataclass(frozen=True)
class V3User:
    """A USM user as snmptrapd registers it for traps: under the sender's engine id (`createUser -e`)."""

    name: str
    engine_id: str
    auth_protocol: str = "SHA-256"  # net-snmp 5.9's spellings: SHA, SHA-256, SHA-512
    auth_key: str | None = None
    priv_protocol: str = "AES"  # AES is AES-128; AES256 is AES-256 with the Blumenthal key extension
    priv_key: str | None = None

    def config_lines(self) -> list[str]:
        """The `createUser` and `authUser` lines of snmptrapd.conf."""
        create = f"createUser -e 0x{self.engine_id} {self.name}"
        if self.auth_key is not None:
            create += f" {self.auth_protocol} {self.auth_key}"
            if self.priv_key is not None:
                create += f" {self.priv_protocol} {self.priv_key}"
        level = "noauth" if self.auth_key is None else ("auth" if self.priv_key is None else "priv")
        return [create, f"authUser log {self.name} {level}"]


@dataclass(frozen=True)
class Trap:
    """One trap as snmptrapd printed it: the header line and the varbinds, `name = TYPE: value` by name."""

    header: str
    varbinds: dict[str, str]

    @property
    def notification(self) -> str:
        """The notification's name, e.g. `CERTMON-MIB::certmonAlarmRaised`."""
        return self.varbinds["SNMPv2-MIB::snmpTrapOID.0"].removeprefix("OID: ")


def parse_trap(header: str, line: str) -> Trap:
    """Split snmptrapd's tab-separated varbind line (its default `-Lo` format) into names and values."""
    varbinds: dict[str, str] = {}
    for item in line.split("\t"):
        name, _, value = item.partition(" = ")
        varbinds[name.strip()] = value
    return Trap(header, varbinds)


@dataclass
class Snmptrapd:
    """A running snmptrapd: its port and every line it has printed so far."""

    port: int
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def traps(self) -> list[Trap]:
        """The traps received so far, in order."""
        lines = list(self.lines)
        return [
            parse_trap(header, line)
            for header, line in itertools.pairwise(lines)
            if header.rstrip().endswith("]:") and "snmpTrapOID.0" in line
        ]

    async def wait_for_traps(self, count: int, timeout: float = 5.0) -> list[Trap]:
        """The first `count` traps, waiting at most `timeout` seconds for them (AssertionError on time out)."""
        deadline = time.monotonic() + timeout
        while len(traps := self.traps()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"snmptrapd printed {len(traps)} of {count} traps:\n" + "\n".join(self.lines))
            await asyncio.sleep(0.02)
        return traps[:count]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _collect(process: subprocess.Popen[str], lines: list[str], ready: threading.Event) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith(_READY_LINE):
            ready.set()
    ready.set()  # it exited: whoever waits learns it at once


@contextmanager
def start_snmptrapd(
    folder: Path,
    *,
    community: str | None = None,
    users: Sequence[V3User] = (),
    lifetime: float = 120.0,
) -> Iterator[Snmptrapd]:
    """Run snmptrapd on a free 127.0.0.1 UDP port with the given community and v3 users until the block ends."""
    executable = require_tool("snmptrapd", "snmptrapd")
    base_mibs = copy_base_mibs(folder / "base-mibs")
    persist = folder / "persist"
    persist.mkdir(parents=True, exist_ok=True)
    config = folder / "snmptrapd.conf"
    lines = [f"authCommunity log {community}"] if community is not None else []
    for user in users:
        lines.extend(user.config_lines())
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    environment = {**os.environ, "SNMP_PERSISTENT_DIR": str(persist)}
    for _ in range(3):  # the free port may be taken between the probe and snmptrapd's bind
        port = _free_udp_port()
        command = [
            executable,
            "-f",
            "-Lo",
            "-C",
            "-c",
            str(config),
            "-M",
            f"{mib_directory()}:{base_mibs}",
            "-m",
            f"{MIB_MODULE}:SNMPv2-MIB",
            f"udp:127.0.0.1:{port}",
        ]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment
        )
        server = Snmptrapd(port, process)
        ready = threading.Event()
        reader = threading.Thread(target=_collect, args=(process, server.lines, ready), daemon=True)
        reader.start()
        # A test that hangs must not leave the daemon behind.
        watchdog = threading.Timer(lifetime, process.kill)
        watchdog.daemon = True
        watchdog.start()
        try:
            ready.wait(10)
            if process.poll() is None and any(line.startswith(_READY_LINE) for line in server.lines):
                yield server
                return
        finally:
            watchdog.cancel()
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            reader.join(5)
            if process.stdout is not None:
                process.stdout.close()
    raise RuntimeError("snmptrapd did not start:\n" + "\n".join(server.lines))
