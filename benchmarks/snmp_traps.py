"""CPU certmon spends per SNMP trap: `SnmpSender.send` over v2c and v3, to a UDP sink in another process.

`time.process_time()` (every thread of this process, user and system) over `--traps` sends of one alarm event
per configuration, after a warm-up trap that builds the receiver's engine. The sink, a child process, counts
the datagrams it gets so the table shows that every trap left. Logging is the production setting: JSON at info,
one `snmp_trap_sent` line per trap, written to /dev/null.

    .venv/bin/python -m benchmarks.snmp_traps [--traps 2000] [--rounds 3]
"""

import argparse
import asyncio
import contextlib
import itertools
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from services.notifier.adapters.snmp import SnmpSender
from services.notifier.domain.deliveries import ChannelKind, Delivery, Notice
from shared.config import SnmpReceiver
from shared.events import make_event
from shared.logging import configure_logging
from tests.support.alarms import build_alarm

BAR_MS = 2.0
ENVIRON = {"COMMUNITY": "bench-community", "AUTH": "bench-auth-key", "PRIV": "bench-priv-key"}
_V3: dict[str, Any] = {"version": "v3", "user": "certmon"}
_KEYS: dict[str, Any] = {"auth_key_env": "AUTH", "priv_key_env": "PRIV"}
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "v2c": {"community_env": "COMMUNITY"},
    "v3 noAuthNoPriv": {**_V3, "engine_id": "8000000001020300"},
    "v3 authNoPriv SHA-256": {**_V3, "auth_key_env": "AUTH", "engine_id": "8000000001020301"},
    # Every authPriv pair of the schema's protocols, each under its own engine id (boots are counted per id).
    **{
        f"v3 authPriv {auth}/{priv}": {
            **_V3,
            **_KEYS,
            "auth_protocol": auth,
            "priv_protocol": priv,
            "engine_id": f"80000000010204{index:02x}",
        }
        for index, (auth, priv) in enumerate(itertools.product(("SHA", "SHA-256", "SHA-512"), ("AES-128", "AES-256")))
    },
}
# The sink: prints its port, counts datagrams until stdin closes, prints the count.
_SINK = """
import socket, sys, threading
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
count = 0
def drain():
    global count
    while True:
        s.recv(65535)
        count += 1
threading.Thread(target=drain, daemon=True).start()
sys.stdin.read()
print(count, flush=True)
"""


async def send_traps(port: int, fields: dict[str, Any], traps: int) -> float:
    """Milliseconds of this process's CPU per trap sent to 127.0.0.1:`port`."""
    receiver = SnmpReceiver(host="127.0.0.1", port=port, **fields)
    sender = SnmpSender({"nms": receiver}, environ=ENVIRON)
    alarm = build_alarm()
    notice = Notice(make_event("alarm.raised.v1", alarm, source="certmon/alarmer"), alarm)
    delivery = Delivery(ChannelKind.SNMP, ("nms",), "shop-team", "default", "bench|snmp|nms")
    try:
        await sender.send(delivery, notice)  # builds the engine, configures the secrets, encodes the names
        started = time.process_time()
        for _ in range(traps):
            await sender.send(delivery, notice)
        spent = time.process_time() - started
    finally:
        sender.close()
        await asyncio.sleep(0.2)  # let the last datagrams reach the sink
    return spent / traps * 1000


def measure(fields: dict[str, Any], traps: int) -> tuple[float, int]:
    """Milliseconds per trap, and how many of the timed traps the sink received."""
    sink = subprocess.Popen([sys.executable, "-c", _SINK], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None and sink.stdin is not None
    try:
        ms = asyncio.run(send_traps(int(sink.stdout.readline()), fields, traps))
    finally:
        sink.stdin.close()
        received = int(sink.stdout.readline() or 0)
        sink.wait(5)
    return ms, received - 1  # the warm-up trap is not timed


def main(traps: int, rounds: int) -> None:
    """Measure each configuration `rounds` times and print the table."""
    configure_logging("info", "json")
    rows = []
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
        for name, fields in CONFIGURATIONS.items():
            results = [measure(fields, traps) for _ in range(rounds)]
            rows.append((name, [ms for ms, _ in results], min(received for _, received in results)))
    print(f"{traps} traps per round, {rounds} rounds; CPU of this process (user + system) per trap")
    print(f"| configuration | median ms/trap | rounds ms/trap | received | under {BAR_MS:g} ms |")
    print("|---|---|---|---|---|")
    for name, figures, received in rows:
        median = statistics.median(figures)
        each = " / ".join(f"{ms:.2f}" for ms in figures)
        print(f"| {name} | {median:.2f} | {each} | {received}/{traps} | {'yes' if median < BAR_MS else 'no'} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traps", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    main(arguments.traps, arguments.rounds)
