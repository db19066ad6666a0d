"""The TLS and SSLv2 record layers as a hostile server's reply reaches us: framing, caps and typed failures.

Reading stops at the caps: a record longer than the protocol allows, a handshake message longer than the
whole-reply byte cap, or more bytes in total than the cap all become `MalformedReply`, never a buffer that
grows with what the peer sends. Timeouts are the caller's (each read runs under its phase deadline).
"""

import asyncio
from dataclasses import dataclass, field

CONTENT_CHANGE_CIPHER_SPEC = 20
CONTENT_ALERT = 21
CONTENT_HANDSHAKE = 22
CONTENT_APPLICATION_DATA = 23

#: RFC 8446 5.1/5.2: a plaintext record carries at most 2^14 bytes, a protected one 2^14 + 256.
MAX_RECORD = 2**14 + 256


class MalformedReply(Exception):
    """The peer's bytes are not the protocol they claim to be (or exceed a cap); the probe's typed failure."""


@dataclass(frozen=True)
class Record:
    """One TLS record as received."""

    content_type: int
    version: int
    payload: bytes


@dataclass
class RecordReader:
    """Reads whole records from a stream, counting every byte against `max_bytes`."""

    reader: asyncio.StreamReader
    max_bytes: int
    received: int = 0

    async def exactly(self, count: int) -> bytes:
        """`count` bytes, or `MalformedReply` when they would pass the cap; `IncompleteReadError` at EOF."""
        if self.received + count > self.max_bytes:
            raise MalformedReply(f"the reply exceeds the {self.max_bytes}-byte cap")
        data = await self.reader.readexactly(count)
        self.received += count
        return data

    async def record(self) -> Record:
        """The next TLS record (header checked: a known content type, major version 3, a legal length)."""
        header = await self.exactly(5)
        content_type, major, minor = header[0], header[1], header[2]
        length = int.from_bytes(header[3:5], "big")
        if content_type not in (CONTENT_CHANGE_CIPHER_SPEC, CONTENT_ALERT, CONTENT_HANDSHAKE, CONTENT_APPLICATION_DATA):
            raise MalformedReply(f"not a TLS record (content type {content_type})")
        if major != 3:
            raise MalformedReply(f"not a TLS record (version {major}.{minor})")
        if length == 0 or length > MAX_RECORD:
            raise MalformedReply(f"a TLS record of {length} bytes")
        return Record(content_type, (major << 8) | minor, await self.exactly(length))


@dataclass
class HandshakeBuffer:
    """Reassembles handshake messages that span records or share one (RFC 8446 5.1)."""

    max_bytes: int
    _pending: bytearray = field(default_factory=bytearray)

    def feed(self, payload: bytes) -> list[tuple[int, bytes]]:
        """Add one handshake record's payload; returns the (type, body) messages it completed."""
        self._pending += payload
        messages: list[tuple[int, bytes]] = []
        while len(self._pending) >= 4:
            length = int.from_bytes(self._pending[1:4], "big")
            if length > self.max_bytes:
                raise MalformedReply(f"a handshake message of {length} bytes")
            if len(self._pending) < 4 + length:
                break
            messages.append((self._pending[0], bytes(self._pending[4 : 4 + length])))
            del self._pending[: 4 + length]
        return messages


class Cursor:
    """Reads big-endian fields from a message body; any overrun is `MalformedReply`."""

    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def take(self, count: int) -> bytes:
        """The next `count` bytes."""
        end = self.offset + count
        if end > len(self.data):
            raise MalformedReply("a message field runs past the end of its message")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def uint(self, size: int) -> int:
        """The next `size`-byte unsigned integer."""
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int) -> bytes:
        """A vector prefixed by its `length_size`-byte length."""
        return self.take(self.uint(length_size))

    @property
    def remaining(self) -> int:
        """How many bytes are left."""
        return len(self.data) - self.offset


def framed(content_type: int, version: int, payload: bytes) -> bytes:
    """`payload` wrapped in TLS records of at most 2^14 bytes each."""
    chunks = [payload[i : i + 2**14] for i in range(0, len(payload), 2**14)] or [b""]
    return b"".join(
        bytes([content_type]) + version.to_bytes(2, "big") + len(chunk).to_bytes(2, "big") + chunk for chunk in chunks
    )


def handshake_message(message_type: int, body: bytes) -> bytes:
    """A handshake message: type, 24-bit length, body."""
    return bytes([message_type]) + len(body).to_bytes(3, "big") + body
