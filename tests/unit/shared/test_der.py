"""DER element bounds: short and long lengths, and bytes that cannot begin an element."""

from shared.der import element


def test_short_and_long_lengths() -> None:
    """A length under 128 is one byte; a longer one is 0x80 + its byte count, then the bytes."""
    assert element(b"\x30\x03\x02\x01\x05") == (2, 5)
    assert element(b"\x00\x30\x82\x01\x00" + b"\x00" * 256, 1) == (5, 261)
    assert element(b"\x04\x81\x80" + b"\x00" * 10) == (3, 131)  # the end as declared, past what is there


def test_bytes_that_cannot_begin_an_element() -> None:
    """Too short for a header, an indefinite length (BER, not DER), or more length bytes than any file needs."""
    assert element(b"") is None
    assert element(b"\x30") is None
    assert element(b"\x30\x80\x00\x00") is None
    assert element(b"\x30\x85\x01\x00\x00\x00\x00") is None
    assert element(b"\x30\x82\x01") is None
