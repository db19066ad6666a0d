"""The STARTTLS registry: each protocol's dialogue, one module per protocol, and `negotiate_starttls`, which runs
the target's before the TLS handshake.

Every byte the server sends counts against `ProbeLimits.max_banner_bytes`; the caller bounds the time.
Failures raise `ProbeFailure(kind="protocol", phase="starttls")`.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from services.scanner.domain.limits import ProbeLimits
from services.scanner.probes.starttls import ftp, imap, ldap, pop3, postgres, smtp, xmpp
from services.scanner.probes.starttls.dialogue import Dialogue
from shared.events.target import Protocol

#: One STARTTLS dialogue: brings a fresh plaintext connection to where the TLS handshake starts, or raises.
StartTls = Callable[[Dialogue], Awaitable[None]]

#: Every protocol that talks before TLS → its dialogue (`tls` talks TLS from the first byte and has none).
DIALOGUES: Mapping[Protocol, StartTls] = {
    "smtp": smtp.starttls,
    "imap": imap.starttls,
    "pop3": pop3.starttls,
    "ftp": ftp.starttls,
    "ldap": ldap.starttls,
    "xmpp": xmpp.starttls,
    "postgres": postgres.starttls,
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
    await DIALOGUES[protocol](Dialogue(reader, writer, budget=limits.max_banner_bytes, domain=domain))
