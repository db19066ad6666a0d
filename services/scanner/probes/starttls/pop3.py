"""POP3 STARTTLS (RFC 2595): `+OK` greeting, `STLS` → `+OK`."""

from services.scanner.probes.starttls.dialogue import Dialogue, refused


async def starttls(talk: Dialogue) -> None:
    """Require a `+OK` greeting and a `+OK` to `STLS`."""
    greeting = await talk.line()
    if not greeting.startswith("+OK"):
        raise refused("pop3", greeting)
    await talk.send("STLS")
    reply = await talk.line()
    if not reply.startswith("+OK"):
        raise refused("pop3", reply)
