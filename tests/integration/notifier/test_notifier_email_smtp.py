"""The email sender against a real SMTP server on 127.0.0.1: content, STARTTLS, authentication, refusals."""

import asyncio
import socket
import ssl

import pytest
import structlog.testing

from services.notifier.adapters.email import EmailSender
from services.notifier.adapters.rendering import AckLinks, Renderer
from services.notifier.domain.deliveries import ChannelKind, Notice, plan_deliveries
from services.notifier.ports import DeliveryError
from shared.action_links import ActionLinkSigner
from shared.config import EmailChannel
from shared.events import make_event
from tests.support.alarms import NOW

PASSWORD = "s3cr3t-Sm7p-pässword"
#: AUTH without TLS is what these loopback tests want; aiosmtpd warns about it.
PLAIN_AUTH_OK = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


def channel(port: int, **overrides) -> EmailChannel:
    """An email channel to the test server, plaintext unless told otherwise."""
    fields = {"host": "127.0.0.1", "port": port, "starttls": False, "from": "certmon@example.com", "timeout": 5}
    return EmailChannel.model_validate(fields | overrides)


SIGNER = ActionLinkSigner(b"link-key-for-the-notifier-tests")


def email_sender(email_channel: EmailChannel, **options) -> EmailSender:
    """The email sender with the packaged templates and signed acknowledge links."""
    links = AckLinks(SIGNER, public_url="https://certmon.example.com", expires_seconds=3600, clock=lambda: NOW)
    return EmailSender(
        email_channel, renderer=Renderer(public_url="https://certmon.example.com"), links=links, **options
    )


def first_delivery(alarm):
    """The first planned email delivery of an alarm, and the alarm event as the sender is given it."""
    delivery = plan_deliveries(alarm, "ev-1", channels=(ChannelKind.EMAIL,))[0]
    event = make_event(f"alarm.{alarm.transition}.v1", alarm, source="certmon/alarmer", event_id="ev-1")
    return delivery, Notice(event, alarm)


async def test_alarm_email_reaches_recipients_as_multipart_text_and_html(smtp_server, make_alarm):
    """One group email: envelope and headers name every address; the body is text + HTML alternatives."""
    alarm = make_alarm()
    alarm = alarm.model_copy(update={"owners": [alarm.owners[0].model_copy(update={"delivery": "group"})]})
    delivery, message = first_delivery(alarm)
    with smtp_server() as server:
        assert await email_sender(channel(server.port)).send(delivery, message) is None
    [got] = server.received
    assert got.mail_from == "certmon@example.com"
    assert got.rcpt_tos == ["alice@example.com", "bob@example.com"]
    assert got.message["Subject"] == "[certmon] CRITICAL raised: shop.example.com:443 expires in 5 days"
    assert got.message["To"] == "alice@example.com, bob@example.com"
    assert got.message["Auto-Submitted"] == "auto-generated"
    assert got.message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in got.message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert "expiry.within_7_days" in got.message.get_body(("plain",)).get_content()
    assert "<h2" in got.message.get_body(("html",)).get_content()
    text = got.message.get_body(("plain",)).get_content()
    token = text.split("https://certmon.example.com/ack/", 1)[1].split()[0]
    assert SIGNER.verify(token, now=NOW).recipient == "alice@example.com,bob@example.com"


async def test_message_id_is_stable_per_delivery(smtp_server, make_alarm):
    """Two sends of one delivery carry the same Message-ID, so a duplicate can be recognised."""
    delivery, message = first_delivery(make_alarm())
    with smtp_server() as server:
        sender = email_sender(channel(server.port))
        await sender.send(delivery, message)
        await sender.send(delivery, message)
    ids = {got.message["Message-ID"] for got in server.received}
    assert len(ids) == 1 and ids.pop().endswith("@example.com>")


async def test_starttls_required_by_server_works_with_a_trusted_certificate(smtp_server, smtp_pki, make_alarm):
    """With `starttls: true` the sender upgrades and the server that requires it accepts the message."""
    delivery, message = first_delivery(make_alarm())
    with smtp_server(tls_context=smtp_pki.server_context, require_starttls=True) as server:
        sender = email_sender(channel(server.port, starttls=True), tls_context=smtp_pki.client_context)
        await sender.send(delivery, message)
    assert [got.rcpt_tos for got in server.received] == [["alice@example.com"]]


async def test_starttls_configured_but_not_offered_refuses_plaintext(smtp_server, smtp_pki, make_alarm):
    """A server that does not offer STARTTLS gets nothing: no downgrade to plaintext, a permanent error."""
    delivery, message = first_delivery(make_alarm())
    with smtp_server() as server:
        sender = email_sender(channel(server.port, starttls=True), tls_context=smtp_pki.client_context)
        with pytest.raises(DeliveryError, match="STARTTLS") as caught:
            await sender.send(delivery, message)
    assert caught.value.transient is False
    assert server.received == []


async def test_starttls_with_an_untrusted_certificate_sends_nothing(smtp_server, smtp_pki, make_alarm):
    """The relay's certificate is verified: an unknown issuer fails the delivery before any data is sent."""
    delivery, message = first_delivery(make_alarm())
    with smtp_server(tls_context=smtp_pki.server_context, require_starttls=True) as server:
        sender = email_sender(channel(server.port, starttls=True), tls_context=ssl.create_default_context())
        with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED") as caught:
            await sender.send(delivery, message)
    assert caught.value.transient is False
    assert server.received == []


@PLAIN_AUTH_OK
async def test_password_from_environment_authenticates_and_is_never_logged(smtp_server, make_alarm):
    """The password comes from `password_env` at send time and appears in no log event."""
    delivery, message = first_delivery(make_alarm())
    config = {"username": "certmon", "password_env": "CERTMON_TEST_SMTP_PASSWORD"}
    with (
        smtp_server(credentials=("certmon", PASSWORD), auth_required=True, auth_require_tls=False) as server,
        structlog.testing.capture_logs() as logs,
    ):
        sender = email_sender(channel(server.port, **config), environ={"CERTMON_TEST_SMTP_PASSWORD": PASSWORD})
        await sender.send(delivery, message)
    assert len(server.received) == 1
    assert logs and PASSWORD not in repr(logs)


@PLAIN_AUTH_OK
async def test_wrong_password_is_a_permanent_failure_that_does_not_leak_it(smtp_server, make_alarm):
    """A refused login fails without retry, and neither the error nor the logs carry the password."""
    delivery, message = first_delivery(make_alarm())
    config = {"username": "certmon", "password_env": "SMTP_PW"}
    with (
        smtp_server(credentials=("certmon", "other"), auth_required=True, auth_require_tls=False) as server,
        structlog.testing.capture_logs() as logs,
    ):
        sender = email_sender(channel(server.port, **config), environ={"SMTP_PW": PASSWORD})
        with pytest.raises(DeliveryError) as caught:
            await sender.send(delivery, message)
    assert caught.value.transient is False
    assert PASSWORD not in str(caught.value) and PASSWORD not in repr(logs)
    assert server.received == []


@PLAIN_AUTH_OK
async def test_password_file_is_read_at_send_time(smtp_server, make_alarm, tmp_path):
    """`password_file` is read when sending, so a rotated secret needs no restart."""
    delivery, message = first_delivery(make_alarm())
    secret = tmp_path / "smtp-password"
    secret.write_text("old\n", encoding="utf-8")
    config = {"username": "certmon", "password_file": str(secret)}
    with smtp_server(credentials=("certmon", PASSWORD), auth_required=True, auth_require_tls=False) as server:
        sender = email_sender(channel(server.port, **config))
        secret.write_text(PASSWORD + "\n", encoding="utf-8")
        await sender.send(delivery, message)
    assert len(server.received) == 1


async def test_missing_password_variable_is_a_permanent_failure(make_alarm):
    """A configured but unset `password_env` fails without connecting anywhere."""
    delivery, message = first_delivery(make_alarm())
    sender = email_sender(channel(1, username="certmon", password_env="UNSET_VARIABLE"), environ={})
    with pytest.raises(DeliveryError, match="UNSET_VARIABLE is not set") as caught:
        await sender.send(delivery, message)
    assert caught.value.transient is False


async def test_recipient_refused_with_550_is_permanent(smtp_server, make_alarm):
    """A 5xx refusal of the only recipient is a permanent failure."""
    delivery, message = first_delivery(make_alarm())
    with (
        smtp_server(refuse={"alice@example.com": "550 5.1.1 no such user"}) as server,
        pytest.raises(DeliveryError, match="550") as caught,
    ):
        await email_sender(channel(server.port)).send(delivery, message)
    assert caught.value.transient is False


async def test_recipient_refused_with_451_is_transient(smtp_server, make_alarm):
    """A 4xx refusal is worth retrying."""
    delivery, message = first_delivery(make_alarm())
    with (
        smtp_server(refuse={"alice@example.com": "451 4.3.0 try again later"}) as server,
        pytest.raises(DeliveryError, match="451") as caught,
    ):
        await email_sender(channel(server.port)).send(delivery, message)
    assert caught.value.transient is True


async def test_group_email_with_one_refused_address_reports_it(smtp_server, make_alarm):
    """When the relay takes some addresses of a group email, it is sent and the refused ones are noted."""
    alarm = make_alarm()
    alarm = alarm.model_copy(update={"owners": [alarm.owners[0].model_copy(update={"delivery": "group"})]})
    delivery, message = first_delivery(alarm)
    with smtp_server(refuse={"bob@example.com": "550 5.1.1 no such user"}) as server:
        note = await email_sender(channel(server.port)).send(delivery, message)
    assert note is not None and "bob@example.com (550" in note
    assert [got.rcpt_tos for got in server.received] == [["alice@example.com"]]


async def test_nothing_listening_is_transient(make_alarm):
    """A refused connection is a transient failure."""
    delivery, message = first_delivery(make_alarm())
    with pytest.raises(DeliveryError) as caught:
        await email_sender(channel(_closed_port())).send(delivery, message)
    assert caught.value.transient is True


async def test_a_silent_server_is_cut_off_by_the_overall_timeout(make_alarm):
    """A server that accepts but never greets ends in a transient timeout, not a hang."""
    delivery, message = first_delivery(make_alarm())

    connections: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)  # and never greet

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        sender = email_sender(channel(port, timeout=1))
        with pytest.raises(DeliveryError) as caught:
            await sender.send(delivery, message)
    finally:
        for writer in connections:
            writer.close()
            await writer.wait_closed()
        server.close()
        await server.wait_closed()
    assert caught.value.transient is True


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
