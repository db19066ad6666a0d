"""The plaintext side of a STARTTLS exchange: reads with one byte budget shared by everything the server sends.

Every read counts against `ProbeLimits.max_banner_bytes`; the caller bounds the time. Failures raise
`ProbeFailure(kind="protocol", phase="starttls")`.
"""

import asyncio

from services.scanner.probes.errors import ProbeFailure

PHASE = "starttls"
_CHUNK = 4096


def protocol_error(message: str) -> ProbeFailure:
    """A failure of the plaintext dialogue before TLS."""
    return ProbeFailure("protocol", message, phase=PHASE)


def refused(protocol: str, reply: str) -> ProbeFailure:
    """The server answered, but not with a yes to the upgrade; quotes (the start of) its answer."""
    return protocol_error(f"{protocol} server refused STARTTLS: {reply[:120]!r}")


class Dialogue:
    """A plaintext exchange with a byte budget; `domain` is the name the client speaks to (SNI or host)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, budget: int, domain: str | None
    ) -> None:
        self._reader, self._writer, self._budget = reader, writer, budget
        self.domain = domain

    def _spend(self, count: int) -> None:
        self._budget -= count
        if self._budget < 0:
            raise protocol_error("server sent too many bytes before TLS")

    async def line(self) -> str:
        """The next CRLF- or LF-terminated line, without its terminator."""
        try:
            raw = await self._reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise protocol_error("server sent an over-long line before TLS") from None
        except asyncio.IncompleteReadError:
            raise protocol_error("server closed the connection before TLS") from None
        self._spend(len(raw))
        return raw.rstrip(b"\r\n").decode("ascii", errors="replace")

    async def exactly(self, count: int) -> bytes:
        """Exactly `count` bytes (refused up front when they would exceed the budget)."""
        if count > self._budget:
            raise protocol_error("server sent too many bytes before TLS")
        try:
            data = await self._reader.readexactly(count)
        except asyncio.IncompleteReadError:
            raise protocol_error("server closed the connection before TLS") from None
        self._spend(len(data))
        return data

    async def some(self) -> bytes:
        """Whatever the server sends next (at least one byte, at most a small chunk)."""
        if self._budget <= 0:
            raise protocol_error("server sent too many bytes before TLS")
        data = await self._reader.read(min(_CHUNK, self._budget))
        if not data:
            raise protocol_error("server closed the connection before TLS")
        self._spend(len(data))
        return data

    async def send(self, command: str) -> None:
        """Send one command line (CRLF-terminated)."""
        await self.send_bytes(command.encode("ascii") + b"\r\n")

    async def send_bytes(self, data: bytes) -> None:
        """Send raw bytes."""
        self._writer.write(data)
        await self._writer.drain()

    async def numbered_reply(self, protocol: str, *, strict: bool) -> tuple[str, str]:
        """An SMTP/FTP reply (possibly multi-line `250-…` … `250 …`): its code and last line.

        SMTP (`strict`) repeats the code on every line; FTP lets the lines between the first and last be free text.
        """
        line = await self.line()
        code = line[:3]
        if not (len(code) == 3 and code.isdigit() and _numbered(line, code)):
            raise protocol_error(f"not an {protocol.upper()} reply: {line[:80]!r}")
        while not _final(line, code):
            line = await self.line()
            if strict and not _numbered(line, code):
                raise protocol_error(f"not an {protocol.upper()} reply: {line[:80]!r}")
        return code, line


async def expect(talk: Dialogue, protocol: str, code: str, *, strict: bool) -> None:
    """Read one numbered reply (`220 …`, multi-line allowed) and refuse the upgrade unless it has `code`."""
    got, line = await talk.numbered_reply(protocol, strict=strict)
    if got != code:
        raise refused(protocol, line)


def _numbered(line: str, code: str) -> bool:
    return line[:3] == code and (len(line) == 3 or line[3] in " -")


def _final(line: str, code: str) -> bool:
    return line[:3] == code and (len(line) == 3 or line[3] == " ")
