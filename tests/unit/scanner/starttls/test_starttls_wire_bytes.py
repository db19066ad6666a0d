"""The bytes the STARTTLS dialogues put on the wire, checked against the protocols' own definitions."""

from services.scanner.probes.starttls.ldap import starttls_request
from services.scanner.probes.starttls.postgres import SSL_REQUEST
from services.scanner.probes.starttls.xmpp import stream_header


def test_ldap_starttls_request_is_the_rfc_4511_extended_request() -> None:
    """SEQUENCE { messageID 1, [APPLICATION 23] { [0] "1.3.6.1.4.1.1466.20037" } }, byte for byte."""
    assert starttls_request() == bytes.fromhex("301d02010177188016") + b"1.3.6.1.4.1.1466.20037"


def test_postgres_ssl_request_is_length_8_and_code_80877103() -> None:
    """The SSLRequest is the length 8 followed by the request code 1234.5679 (0x04d2162f)."""
    assert bytes.fromhex("0000000804d2162f") == SSL_REQUEST


def test_xmpp_stream_header_quotes_a_hostile_domain() -> None:
    """A domain with quotes and angle brackets cannot break out of the `to` attribute."""
    header = stream_header("evil'\"><x/>")
    assert b"<x/>" not in header
    assert b'to="evil\'&quot;&gt;&lt;x/&gt;"' in header
