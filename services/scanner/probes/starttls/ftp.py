"""FTP over TLS (RFC 4217): greeting 220, `AUTH TLS` → 234."""

from services.scanner.probes.starttls.dialogue import Dialogue, expect


async def starttls(talk: Dialogue) -> None:
    """Ask for `AUTH TLS`; the lines inside a multi-line reply may be free text, as FTP allows."""
    await expect(talk, "ftp", "220", strict=False)
    await talk.send("AUTH TLS")
    await expect(talk, "ftp", "234", strict=False)
