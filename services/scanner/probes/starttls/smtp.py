"""SMTP STARTTLS (RFC 3207): greeting 220, `EHLO`, `STARTTLS` → 220."""

from services.scanner.probes.starttls.dialogue import Dialogue, expect


async def starttls(talk: Dialogue) -> None:
    """Greet with `EHLO` and ask for STARTTLS; every reply must carry its code on every line."""
    await expect(talk, "smtp", "220", strict=True)
    await talk.send("EHLO certmon.invalid")
    await expect(talk, "smtp", "250", strict=True)
    await talk.send("STARTTLS")
    await expect(talk, "smtp", "220", strict=True)
