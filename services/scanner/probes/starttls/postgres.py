"""PostgreSQL's SSLRequest (the frontend/backend protocol): the 8-byte request → `S`, then TLS."""

from services.scanner.probes.starttls.dialogue import Dialogue, protocol_error

#: PostgreSQL's SSLRequest: length 8, then the request code 1234 << 16 | 5679.
SSL_REQUEST = (8).to_bytes(4, "big") + bytes.fromhex("04d2162f")


async def starttls(talk: Dialogue) -> None:
    """Send the SSLRequest and require the one-byte `S` that accepts it."""
    await talk.send_bytes(SSL_REQUEST)
    answer = await talk.exactly(1)
    if answer == b"N":
        raise protocol_error("postgres server refused SSL (it answered the SSLRequest with 'N')")
    if answer != b"S":
        # 'E' is an ErrorResponse (a server too old for SSLRequest); anything else is not PostgreSQL.
        raise protocol_error(f"postgres server answered the SSLRequest with {answer!r}, not 'S'")
