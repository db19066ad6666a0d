"""STARTTLS for FTP, LDAP, XMPP and PostgreSQL against local peers speaking the real protocol bytes (and the
real PostgreSQL on this machine), then a TLS upgrade whose chain the probe captures."""

import asyncio
import base64
import datetime as dt
import re
import ssl
from pathlib import Path

import asyncpg
import pytest

from services.scanner.domain.limits import ProbeLimits
from services.scanner.probes.handshake.endpoint import observe_endpoint
from shared.events import Observation, Target
from shared.events.target import Protocol
from tests.integration.scanner.peers import PlainDialogue, starttls_peer, stdlib_context
from tests.support.pki import Issued, make_ca, make_leaf

FAST = ProbeLimits(connect_seconds=2, handshake_seconds=2, target_seconds=5)
WHEN = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

#: RFC 4511's StartTLS ExtendedRequest with messageID 1, written out by hand.
LDAP_STARTTLS_REQUEST = bytes.fromhex("301d02010177188016") + b"1.3.6.1.4.1.1466.20037"
LDAP_STARTTLS_SUCCESS = bytes.fromhex("3024020101781f0a010004000400" + "8a16") + b"1.3.6.1.4.1.1466.20037"
XMPP_TLS = b"urn:ietf:params:xml:ns:xmpp-tls"
XMPP_SERVER_HEADER = (
    b"<?xml version='1.0'?><stream:stream from='chat.example.test' id='c2s-1' version='1.0' "
    b"xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)
XMPP_FEATURES = (
    b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
    b"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>"
    b"</stream:features>"
)


def _b64(issued: Issued) -> str:
    return base64.b64encode(issued.der).decode("ascii")


@pytest.fixture(scope="module")
def issuer() -> Issued:
    """An intermediate CA under a test root."""
    return make_ca("certmon Edge Intermediate", issuer=make_ca())


@pytest.fixture
def served(tmp_path: Path, issuer: Issued) -> tuple[ssl.SSLContext, Issued]:
    """A stdlib server context presenting leaf + intermediate, and the leaf."""
    leaf = make_leaf(issuer, ["chat.example.test", "127.0.0.1"])
    return stdlib_context(tmp_path, "edge", leaf, issuer), leaf


async def _observe(port: int, protocol: Protocol, limits: ProbeLimits = FAST, **fields: str) -> Observation:
    return await observe_endpoint(
        Target(host="127.0.0.1", port=port, protocol=protocol, **fields), now=WHEN, limits=limits
    )


# --- FTP (RFC 4217) ---------------------------------------------------------------------------------------------


def _ftp(received: list[bytes], answer: bytes = b"234 AUTH TLS successful\r\n") -> PlainDialogue:
    async def dialogue(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"220-certmon fake FTP\r\n free text in a multi-line greeting\r\n220 Ready\r\n")
        received.append(await reader.readline())
        writer.write(answer)
        await writer.drain()
        return answer.startswith(b"234")

    return dialogue


async def test_ftp_auth_tls_captures_the_chain(served: tuple[ssl.SSLContext, Issued], issuer: Issued) -> None:
    """FTP: a multi-line 220 greeting, `AUTH TLS`, 234, then the handshake captures leaf and intermediate."""
    ctx, leaf = served
    received: list[bytes] = []
    async with starttls_peer(_ftp(received), ctx) as port:
        obs = await _observe(port, "ftp")
    assert obs.error is None
    assert obs.chain == [_b64(leaf), _b64(issuer)]
    assert received == [b"AUTH TLS\r\n"]


async def test_ftp_server_refusing_auth_tls_is_a_protocol_error(served: tuple[ssl.SSLContext, Issued]) -> None:
    """A 504 answer to AUTH TLS is a `protocol` error in the starttls phase quoting the reply."""
    async with starttls_peer(_ftp([], b"504 Security mechanism not understood\r\n"), served[0]) as port:
        obs = await _observe(port, "ftp")
    assert obs.error is not None
    assert (obs.error.kind, obs.error.phase) == ("protocol", "starttls")
    assert obs.error.message == "ftp server refused STARTTLS: '504 Security mechanism not understood'"


# --- LDAP (RFC 4511 §4.14) --------------------------------------------------------------------------------------


def _ldap(received: list[bytes], answer: bytes) -> PlainDialogue:
    async def dialogue(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        header = await reader.readexactly(2)
        received.append(header + await reader.readexactly(header[1]))
        writer.write(answer)
        await writer.drain()
        return answer == LDAP_STARTTLS_SUCCESS

    return dialogue


async def test_ldap_starttls_extended_operation_captures_the_chain(served: tuple[ssl.SSLContext, Issued]) -> None:
    """LDAP: the BER StartTLS ExtendedRequest goes out byte for byte; a success response leads to TLS."""
    ctx, leaf = served
    received: list[bytes] = []
    async with starttls_peer(_ldap(received, LDAP_STARTTLS_SUCCESS), ctx) as port:
        obs = await _observe(port, "ldap")
    assert obs.error is None
    assert obs.chain[0] == _b64(leaf)
    assert received == [LDAP_STARTTLS_REQUEST]


async def test_ldap_error_result_is_a_refusal_with_code_and_diagnostic(served: tuple[ssl.SSLContext, Issued]) -> None:
    """An ExtendedResponse with resultCode 2 is a refusal naming the code and the server's diagnostic."""
    diagnostic = b"StartTLS not supported"
    body = bytes.fromhex("0a0102" + "0400") + bytes([0x04, len(diagnostic)]) + diagnostic
    response = bytes([0x78, len(body)]) + body
    answer = bytes([0x30, 3 + len(response)]) + bytes.fromhex("020101") + response
    async with starttls_peer(_ldap([], answer), served[0]) as port:
        obs = await _observe(port, "ldap")
    assert obs.error is not None
    assert (obs.error.kind, obs.error.phase) == ("protocol", "starttls")
    assert obs.error.message == "ldap server refused STARTTLS: 'result 2 (protocolError): StartTLS not supported'"


async def test_ldap_notice_of_disconnection_is_named(served: tuple[ssl.SSLContext, Issued]) -> None:
    """An unsolicited Notice of Disconnection (messageID 0) is reported as such."""
    body = bytes.fromhex("0a0134" + "0400" + "0404") + b"busy" + bytes.fromhex("8a16") + b"1.3.6.1.4.1.1466.20036"
    response = bytes([0x78, len(body)]) + body
    answer = bytes([0x30, 3 + len(response)]) + bytes.fromhex("020100") + response
    async with starttls_peer(_ldap([], answer), served[0]) as port:
        obs = await _observe(port, "ldap")
    assert obs.error is not None
    assert obs.error.message == "ldap server sent a notice of disconnection: 'busy'"


async def test_ldap_response_declaring_a_huge_length_is_refused_before_reading_it(
    served: tuple[ssl.SSLContext, Issued],
) -> None:
    """A response that declares 2 GiB is stopped by the banner byte cap without reading (or buffering) it."""
    async with starttls_peer(_ldap([], bytes.fromhex("30847fffffff020101")), served[0]) as port:
        obs = await _observe(port, "ldap")
    assert obs.error is not None
    assert (obs.error.kind, obs.error.message) == ("protocol", "server sent too many bytes before TLS")


# --- XMPP (RFC 6120 §5) -----------------------------------------------------------------------------------------


async def _read_until(reader: asyncio.StreamReader, pattern: bytes) -> bytes:
    data = b""
    while not re.search(pattern, data):
        chunk = await reader.read(1024)
        if not chunk:
            raise ConnectionResetError
        data += chunk
    return data


def _xmpp(received: list[bytes], features: bytes = XMPP_FEATURES, answer: bytes | None = None) -> PlainDialogue:
    async def dialogue(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        received.append(await _read_until(reader, rb"<stream:stream[^>]*>"))
        writer.write(XMPP_SERVER_HEADER)
        await writer.drain()
        await asyncio.sleep(0.01)  # the features arrive in a second segment: the client must parse incrementally
        writer.write(features)
        await writer.drain()
        received.append(await _read_until(reader, rb"<starttls[^>]*/>"))
        writer.write(answer or b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        await writer.drain()
        return answer is None

    return dialogue


async def test_xmpp_starttls_uses_the_sni_name_as_domain(served: tuple[ssl.SSLContext, Issued]) -> None:
    """XMPP: the stream goes `to` the SNI name, `<starttls/>` is sent, `<proceed/>` leads to TLS."""
    ctx, leaf = served
    received: list[bytes] = []
    async with starttls_peer(_xmpp(received), ctx) as port:
        obs = await _observe(port, "xmpp", sni="chat.example.test")
    assert obs.error is None
    assert obs.chain[0] == _b64(leaf)
    assert b'to="chat.example.test"' in received[0]
    assert b"xmlns:stream='http://etherx.jabber.org/streams'" in received[0]
    assert received[1] == b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"


async def test_xmpp_without_starttls_feature_says_so(served: tuple[ssl.SSLContext, Issued]) -> None:
    """Stream features without `<starttls/>` are a `protocol` error before anything is asked."""
    features = b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></stream:features>"
    received: list[bytes] = []
    async with starttls_peer(_xmpp(received, features=features), served[0]) as port:
        obs = await _observe(port, "xmpp")
    assert obs.error is not None
    assert (obs.error.kind, obs.error.message) == ("protocol", "xmpp server does not offer STARTTLS")


async def test_xmpp_failure_answer_is_a_refusal(served: tuple[ssl.SSLContext, Issued]) -> None:
    """`<failure/>` in answer to `<starttls/>` is a refusal."""
    answer = b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>"
    async with starttls_peer(_xmpp([], answer=answer), served[0]) as port:
        obs = await _observe(port, "xmpp")
    assert obs.error is not None
    assert obs.error.message == "xmpp server refused STARTTLS: '<failure/>'"


async def test_xmpp_stream_error_names_its_condition(served: tuple[ssl.SSLContext, Issued]) -> None:
    """A stream error instead of features names the condition (here: host-unknown)."""
    error = b"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
    async with starttls_peer(_xmpp([], features=error), served[0]) as port:
        obs = await _observe(port, "xmpp")
    assert obs.error is not None
    assert obs.error.message == "xmpp server sent a stream error: host-unknown"


async def test_xmpp_dtd_is_refused_before_parsing(served: tuple[ssl.SSLContext, Issued]) -> None:
    """A DTD (the vehicle of entity expansion attacks) is forbidden by XMPP and refused."""
    features = b"<!DOCTYPE lol [<!ENTITY lol 'lol'>]><stream:features>&lol;</stream:features>"
    async with starttls_peer(_xmpp([], features=features), served[0]) as port:
        obs = await _observe(port, "xmpp")
    assert obs.error is not None
    assert obs.error.message == "xmpp server sent a DTD, comment or processing instruction, which XMPP forbids"


async def test_endless_xmpp_features_are_cut_at_the_byte_cap(served: tuple[ssl.SSLContext, Issued]) -> None:
    """Features that never end are stopped by `max_banner_bytes`."""
    features = b"<stream:features>" + b"<mechanism>PLAIN</mechanism>" * 1000
    limits = ProbeLimits(max_banner_bytes=4096, handshake_seconds=5, target_seconds=5)
    async with starttls_peer(_xmpp([], features=features), served[0]) as port:
        obs = await _observe(port, "xmpp", limits)
    assert obs.error is not None
    assert (obs.error.kind, obs.error.message) == ("protocol", "server sent too many bytes before TLS")


# --- PostgreSQL (SSLRequest) ------------------------------------------------------------------------------------

SSL_REQUEST = bytes.fromhex("0000000804d2162f")


def _postgres(received: list[bytes], answer: bytes) -> PlainDialogue:
    async def dialogue(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        received.append(await reader.readexactly(8))
        writer.write(answer)
        await writer.drain()
        return answer == b"S"

    return dialogue


async def test_postgres_ssl_request_captures_the_chain(served: tuple[ssl.SSLContext, Issued]) -> None:
    """PostgreSQL: the 8-byte SSLRequest, `S`, then the handshake captures the chain."""
    ctx, leaf = served
    received: list[bytes] = []
    async with starttls_peer(_postgres(received, b"S"), ctx) as port:
        obs = await _observe(port, "postgres")
    assert obs.error is None
    assert obs.chain[0] == _b64(leaf)
    assert received == [SSL_REQUEST]


async def test_postgres_answering_garbage_is_a_protocol_error(served: tuple[ssl.SSLContext, Issued]) -> None:
    """An answer other than S or N (here an ErrorResponse's 'E') is a `protocol` error quoting it."""
    async with starttls_peer(_postgres([], b"E"), served[0]) as port:
        obs = await _observe(port, "postgres")
    assert obs.error is not None
    assert obs.error.message == "postgres server answered the SSLRequest with b'E', not 'S'"


async def test_real_postgresql_is_observed_or_refuses_ssl_clearly(database_url: str) -> None:
    """The PostgreSQL on 127.0.0.1:5432: a chain when it has SSL on, else a clear "server refused SSL"."""
    connection = await asyncpg.connect(database_url)
    try:
        ssl_on = await connection.fetchval("SHOW ssl") == "on"
    finally:
        await connection.close()
    obs = await _observe(5432, "postgres")
    if ssl_on:
        assert obs.error is None
        assert obs.chain
    else:
        assert obs.error is not None
        assert (obs.error.kind, obs.error.phase) == ("protocol", "starttls")
        assert "server refused SSL" in obs.error.message
