"""XMPP STARTTLS (RFC 6120 §5): open a client stream to the target's domain, read the stream features, send
`<starttls/>`, and require `<proceed/>`.

The server's XML is read incrementally by a pull parser, within the STARTTLS byte budget. XMPP forbids DTDs,
comments and processing instructions (RFC 6120 §11.1), so any `<!` or a second `<?` is refused before parsing:
no entity can expand.
"""

from xml.etree.ElementTree import Element, ParseError, XMLPullParser
from xml.sax.saxutils import quoteattr

from services.scanner.probes.starttls.dialogue import Dialogue, protocol_error, refused

STREAMS_NS = "http://etherx.jabber.org/streams"
TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls"
STARTTLS_COMMAND = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"

_FEATURES = f"{{{STREAMS_NS}}}features"
_STREAM_ERROR = f"{{{STREAMS_NS}}}error"
_STARTTLS = f"{{{TLS_NS}}}starttls"
_PROCEED = f"{{{TLS_NS}}}proceed"
_FAILURE = f"{{{TLS_NS}}}failure"


def stream_header(domain: str) -> bytes:
    """The client's opening stream tag addressed to `domain`."""
    return (
        "<?xml version='1.0'?>"
        f"<stream:stream to={quoteattr(domain)} version='1.0' xml:lang='en' xmlns='jabber:client' "
        f"xmlns:stream='{STREAMS_NS}'>"
    ).encode()


class _Stream:
    """The server's side of the stream, parsed as it arrives."""

    def __init__(self, talk: Dialogue) -> None:
        self._talk = talk
        self._parser: XMLPullParser[Element] = XMLPullParser(events=("end",))
        self._seen = b""

    async def next_of(self, *tags: str) -> Element:
        """The next completed element among `tags` (or a stream error, which ends the dialogue)."""
        while True:
            for event in self._parser.read_events():
                element = event[-1]
                if not isinstance(element, Element):  # only "end" events were asked for; they carry elements
                    continue
                if element.tag == _STREAM_ERROR:
                    condition = next((child.tag.rpartition("}")[2] for child in element), "unknown")
                    raise protocol_error(f"xmpp server sent a stream error: {condition}")
                if element.tag in tags:
                    return element
            await self._feed(await self._talk.some())

    async def _feed(self, data: bytes) -> None:
        tail = self._seen[-1:] + data  # a `<!` may straddle two reads
        self._seen += data
        if b"<!" in tail or self._seen.count(b"<?") > 1:
            raise protocol_error("xmpp server sent a DTD, comment or processing instruction, which XMPP forbids")
        try:
            self._parser.feed(data)
        except ParseError as exc:
            raise protocol_error(f"xmpp server sent malformed XML: {exc}") from None


async def starttls(talk: Dialogue) -> None:
    """Open the stream, require STARTTLS among the features, and ask for it."""
    await talk.send_bytes(stream_header(talk.domain or "localhost"))
    stream = _Stream(talk)
    features = await stream.next_of(_FEATURES)
    if features.find(_STARTTLS) is None:
        raise protocol_error("xmpp server does not offer STARTTLS")
    await talk.send_bytes(STARTTLS_COMMAND)
    answer = await stream.next_of(_PROCEED, _FAILURE)
    if answer.tag == _FAILURE:
        raise refused("xmpp", "<failure/>")
