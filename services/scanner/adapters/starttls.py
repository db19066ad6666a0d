"""The plaintext dialogue that asks a server to switch to TLS (STARTTLS), run before the TLS handshake.

Implemented: smtp (EHLO, STARTTLS → 220), imap (`a1 STARTTLS` → `a1 OK`), pop3 (STLS → +OK).
Not yet: ftp, ldap, xmpp, postgres — they end in a `protocol` error that says so.
Every byte the server sends counts against `ProbeLimits.max_banner_bytes`; the caller bounds the time.
Failures raise `ProbeFailure(kind="protocol", phase="starttls")`.
"""

import asyncio
from collections.abc import Awaitable, Callable

from services.scanner.adapters.probe_errors import ProbeFailure
from services.scanner.domain import ProbeLimits
from shared.events.target import Protocol

PHASE = "starttls"


class _Dialogue:
    """Line-oriented plaintext exchange with a byte budget shared by every line read."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, budget: int) -> None:
        self._reader, self._writer, self._budget = reader, writer, budget

    async def line(self) -> str:
        """The next CRLF- or LF-terminated line, without its terminator."""
        try:
            raw = await self._reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise ProbeFailure("protocol", "server sent an over-long line before TLS", phase=PHASE) from None
        except asyncio.IncompleteReadError:
            raise ProbeFailure("protocol", "server closed the connection before TLS", phase=PHASE) from None
        self._budget -= len(raw)
        if self._budget < 0:
            raise ProbeFailure("protocol", "server sent too many bytes before TLS", phase=PHASE)
        return raw.rstrip(b"\r\n").decode("ascii", errors="replace")

    async def send(self, command: str) -> None:
        """Send one command line."""
        self._writer.write(command.encode("ascii") + b"\r\n")
        await self._writer.drain()

    async def smtp_reply(self) -> tuple[str, str]:
        """An SMTP reply (possibly multi-line `250-…`): its code and last line."""
        while True:
            line = await self.line()
            code = line[:3]
            if not (code.isdigit() and len(line) >= 3):
                raise ProbeFailure("protocol", f"not an SMTP reply: {line[:80]!r}", phase=PHASE)
            if len(line) == 3 or line[3] == " ":
                return code, line
            if line[3] != "-":
                raise ProbeFailure("protocol", f"not an SMTP reply: {line[:80]!r}", phase=PHASE)


def _refused(protocol: str, reply: str) -> ProbeFailure:
    return ProbeFailure("protocol", f"{protocol} server refused STARTTLS: {reply[:120]!r}", phase=PHASE)


async def _smtp(talk: _Dialogue) -> None:
    code, line = await talk.smtp_reply()
    if code != "220":
        raise _refused("smtp", line)
    await talk.send("EHLO certmon.invalid")
    code, line = await talk.smtp_reply()
    if code != "250":
        raise _refused("smtp", line)
    await talk.send("STARTTLS")
    code, line = await talk.smtp_reply()
    if code != "220":
        raise _refused("smtp", line)


async def _imap(talk: _Dialogue) -> None:
    greeting = await talk.line()
    if not greeting.upper().startswith("* OK"):
        raise _refused("imap", greeting)
    await talk.send("a1 STARTTLS")
    while True:  # untagged lines (`* CAPABILITY …`) may come before the tagged answer
        line = await talk.line()
        if line.startswith("a1 "):
            if line[3:].upper().startswith("OK"):
                return
            raise _refused("imap", line)


async def _pop3(talk: _Dialogue) -> None:
    greeting = await talk.line()
    if not greeting.startswith("+OK"):
        raise _refused("pop3", greeting)
    await talk.send("STLS")
    reply = await talk.line()
    if not reply.startswith("+OK"):
        raise _refused("pop3", reply)


_DIALOGUES: dict[str, Callable[[_Dialogue], Awaitable[None]]] = {"smtp": _smtp, "imap": _imap, "pop3": _pop3}


def require_supported(protocol: Protocol) -> None:
    """Raise before any connection is made when `protocol` has no dialogue here yet."""
    if protocol != "tls" and protocol not in _DIALOGUES:
        raise ProbeFailure("protocol", f"STARTTLS for {protocol} is not implemented yet", phase=PHASE)


async def negotiate_starttls(
    protocol: Protocol, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, limits: ProbeLimits
) -> None:
    """Bring a fresh plaintext connection to where the TLS handshake starts (nothing to do for `tls`).

    Call `require_supported` first: an unsupported protocol here is a KeyError, a bug of the caller.
    """
    if protocol == "tls":
        return
    await _DIALOGUES[protocol](_Dialogue(reader, writer, limits.max_banner_bytes))
