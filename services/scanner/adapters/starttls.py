"""The plaintext dialogue that asks a server to switch to TLS (STARTTLS), run before the TLS handshake.

- smtp: greeting 220, `EHLO`, `STARTTLS` → 220 (RFC 3207)
- imap: `* OK` greeting, `a1 STARTTLS` → `a1 OK` (RFC 3501)
- pop3: `+OK` greeting, `STLS` → `+OK` (RFC 2595)
- ftp: greeting 220, `AUTH TLS` → 234 (RFC 4217)
- ldap: the StartTLS extended operation, BER-encoded (RFC 4511 §4.14), see `starttls_ldap`
- xmpp: stream header, `<starttls/>` → `<proceed/>` (RFC 6120 §5), see `starttls_xmpp`
- postgres: the 8-byte SSLRequest → `S` (the PostgreSQL frontend/backend protocol)

Every byte the server sends counts against `ProbeLimits.max_banner_bytes`; the caller bounds the time.
Failures raise `ProbeFailure(kind="protocol", phase="starttls")`.
"""

import asyncio
from collections.abc import Awaitable, Callable

from services.scanner.adapters.dialogue import Dialogue, protocol_error, refused
from services.scanner.adapters.starttls_ldap import ldap_starttls
from services.scanner.adapters.starttls_xmpp import xmpp_starttls
from services.scanner.domain import ProbeLimits
from shared.events.target import Protocol

#: PostgreSQL's SSLRequest: length 8, then the request code 1234 << 16 | 5679.
POSTGRES_SSL_REQUEST = (8).to_bytes(4, "big") + bytes.fromhex("04d2162f")


async def _expect(talk: Dialogue, protocol: str, code: str, *, strict: bool) -> None:
    """Read one numbered reply (`220 …`, multi-line allowed) and refuse the upgrade unless it has `code`."""
    got, line = await talk.numbered_reply(protocol, strict=strict)
    if got != code:
        raise refused(protocol, line)


async def _smtp(talk: Dialogue) -> None:
    await _expect(talk, "smtp", "220", strict=True)
    await talk.send("EHLO certmon.invalid")
    await _expect(talk, "smtp", "250", strict=True)
    await talk.send("STARTTLS")
    await _expect(talk, "smtp", "220", strict=True)


async def _imap(talk: Dialogue) -> None:
    greeting = await talk.line()
    if not greeting.upper().startswith("* OK"):
        raise refused("imap", greeting)
    await talk.send("a1 STARTTLS")
    while True:  # untagged lines (`* CAPABILITY …`) may come before the tagged answer
        line = await talk.line()
        if line.startswith("a1 "):
            if line[3:].upper().startswith("OK"):
                return
            raise refused("imap", line)


async def _pop3(talk: Dialogue) -> None:
    greeting = await talk.line()
    if not greeting.startswith("+OK"):
        raise refused("pop3", greeting)
    await talk.send("STLS")
    reply = await talk.line()
    if not reply.startswith("+OK"):
        raise refused("pop3", reply)


async def _ftp(talk: Dialogue) -> None:
    await _expect(talk, "ftp", "220", strict=False)
    await talk.send("AUTH TLS")
    await _expect(talk, "ftp", "234", strict=False)


async def _postgres(talk: Dialogue) -> None:
    await talk.send_bytes(POSTGRES_SSL_REQUEST)
    answer = await talk.exactly(1)
    if answer == b"N":
        raise protocol_error("postgres server refused SSL (it answered the SSLRequest with 'N')")
    if answer != b"S":
        # 'E' is an ErrorResponse (a server too old for SSLRequest); anything else is not PostgreSQL.
        raise protocol_error(f"postgres server answered the SSLRequest with {answer!r}, not 'S'")


_DIALOGUES: dict[Protocol, Callable[[Dialogue], Awaitable[None]]] = {
    "smtp": _smtp,
    "imap": _imap,
    "pop3": _pop3,
    "ftp": _ftp,
    "ldap": ldap_starttls,
    "xmpp": xmpp_starttls,
    "postgres": _postgres,
}


async def negotiate_starttls(
    protocol: Protocol,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    limits: ProbeLimits,
    domain: str | None = None,
) -> None:
    """Bring a fresh plaintext connection to where the TLS handshake starts (nothing to do for `tls`).

    `domain` is the name the client addresses (XMPP's stream `to`); the target's SNI name or host.
    """
    if protocol == "tls":
        return
    await _DIALOGUES[protocol](Dialogue(reader, writer, budget=limits.max_banner_bytes, domain=domain))
