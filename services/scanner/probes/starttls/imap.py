"""IMAP STARTTLS (RFC 3501): `* OK` greeting, `a1 STARTTLS` → `a1 OK`."""

from services.scanner.probes.starttls.dialogue import Dialogue, refused


async def starttls(talk: Dialogue) -> None:
    """Require an `* OK` greeting and a tagged OK to `a1 STARTTLS`."""
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
