"""LDAP StartTLS (RFC 4511 §4.14): one BER-encoded ExtendedRequest, one ExtendedResponse, then TLS.

Only the few BER forms an LDAPMessage uses are read (one-byte tags, definite lengths of up to four bytes); the
response must fit the STARTTLS byte budget before a byte of its body is read.
"""

from services.scanner.probes.starttls.dialogue import Dialogue, protocol_error, refused

#: The StartTLS extended operation's name.
STARTTLS_OID = b"1.3.6.1.4.1.1466.20037"
#: The unsolicited Notice of Disconnection a server sends before hanging up (RFC 4511 §4.4.1).
NOTICE_OF_DISCONNECTION_OID = b"1.3.6.1.4.1.1466.20036"

_SEQUENCE, _INTEGER, _ENUMERATED, _OCTET_STRING = 0x30, 0x02, 0x0A, 0x04
_EXTENDED_REQUEST, _EXTENDED_RESPONSE = 0x77, 0x78  # [APPLICATION 23] and [APPLICATION 24], constructed
_REQUEST_NAME, _RESPONSE_NAME = 0x80, 0x8A  # [0] and [10], primitive
_MESSAGE_ID = 1

#: A few result codes by name, so a refusal reads like the server meant it (RFC 4511 Appendix A).
_RESULT_NAMES = {1: "operationsError", 2: "protocolError", 52: "unavailable", 53: "unwillingToPerform"}


def _tlv(tag: int, value: bytes) -> bytes:
    """One BER element with a definite length (short form under 128 bytes, long form above)."""
    size = len(value)
    if size < 0x80:
        return bytes([tag, size]) + value
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + value


def starttls_request(message_id: int = _MESSAGE_ID) -> bytes:
    """The LDAPMessage carrying the StartTLS ExtendedRequest."""
    operation = _tlv(_EXTENDED_REQUEST, _tlv(_REQUEST_NAME, STARTTLS_OID))
    return _tlv(_SEQUENCE, _tlv(_INTEGER, message_id.to_bytes(1, "big")) + operation)


def _elements(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, value) elements laid end to end in `data`; raises a protocol error on a malformed one."""
    elements, offset = [], 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise protocol_error("ldap server sent a truncated BER element")
        tag, first = data[offset], data[offset + 1]
        offset += 2
        size = first
        if first & 0x80:
            count = first & 0x7F
            if not 1 <= count <= 4 or offset + count > len(data):
                raise protocol_error("ldap server sent a BER length this client does not accept")
            size = int.from_bytes(data[offset : offset + count], "big")
            offset += count
        if offset + size > len(data):
            raise protocol_error("ldap server sent a truncated BER element")
        elements.append((tag, data[offset : offset + size]))
        offset += size
    return elements


async def _message(talk: Dialogue) -> bytes:
    """The body of the next LDAPMessage (a SEQUENCE), read exactly."""
    tag, first = await talk.exactly(2)
    if tag != _SEQUENCE:
        raise protocol_error(f"not an LDAP message: it starts with byte {tag:#04x}")
    size = first
    if first & 0x80:
        count = first & 0x7F
        if not 1 <= count <= 4:
            raise protocol_error("ldap server sent a BER length this client does not accept")
        size = int.from_bytes(await talk.exactly(count), "big")
    return await talk.exactly(size)


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


async def starttls(talk: Dialogue) -> None:
    """Ask for StartTLS and require a success ExtendedResponse to it."""
    await talk.send_bytes(starttls_request())
    elements = _elements(await _message(talk))
    if len(elements) < 2 or elements[0][0] != _INTEGER or elements[1][0] != _EXTENDED_RESPONSE:
        raise protocol_error("ldap server did not answer with an ExtendedResponse")
    message_id = int.from_bytes(elements[0][1], "big")
    response = _elements(elements[1][1])
    if len(response) < 3 or [tag for tag, _ in response[:3]] != [_ENUMERATED, _OCTET_STRING, _OCTET_STRING]:
        raise protocol_error("ldap server sent a malformed ExtendedResponse")
    code, diagnostic = int.from_bytes(response[0][1], "big"), _text(response[2][1])
    names = [value for tag, value in response[3:] if tag == _RESPONSE_NAME]
    if message_id == 0 and NOTICE_OF_DISCONNECTION_OID in names:
        raise protocol_error(f"ldap server sent a notice of disconnection: {diagnostic[:120]!r}")
    if message_id != _MESSAGE_ID:
        raise protocol_error(f"ldap server answered message {message_id}, not the StartTLS request")
    if code != 0:
        raise refused("ldap", f"result {code} ({_RESULT_NAMES.get(code, 'error')}): {diagnostic}")
