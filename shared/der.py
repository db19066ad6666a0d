"""Where a DER element's content starts and ends: enough to find a part of a certificate or tell a file's kind
without decoding it (`cryptography` offers no accessor for the encoding of a part, such as a name)."""

#: Length bytes read at most: 4 (4 GiB) is far beyond any certificate or certificate file.
_MAX_LENGTH_BYTES = 4


def element(data: bytes, at: int = 0) -> tuple[int, int] | None:
    """(content start, end) of the DER element at `at` (a one-byte tag, a definite length), or None when the
    bytes there cannot begin one. The end is as declared: the caller compares it with what it has."""
    if len(data) < at + 2:
        return None
    first = data[at + 1]
    if first < 0x80:
        return at + 2, at + 2 + first
    count = first & 0x7F
    if count == 0 or count > _MAX_LENGTH_BYTES or len(data) < at + 2 + count:
        return None
    start = at + 2 + count
    return start, start + int.from_bytes(data[at + 2 : start], "big")
