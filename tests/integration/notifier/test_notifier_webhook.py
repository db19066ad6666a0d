"""The webhook sender against a real HTTP server on 127.0.0.1: the three formats, the signature and delivery
headers, configured headers, the address policy, and which failures are worth retrying."""

import hashlib
import hmac
import json

import pytest
import structlog.testing

from services.notifier.adapters.webhook import WebhookSender
from services.notifier.domain.deliveries import ChannelKind, Delivery, Notice, idempotency_key
from services.notifier.ports import DeliveryError
from shared.address_policy import AddressPolicy, networks
from shared.config import WebhookChannel
from shared.config.schema import Scanning
from shared.events import make_event
from tests.support.alarms import build_alarm
from tests.support.webhook_sink import WebhookSink, start_webhook_sink

pytestmark = pytest.mark.integration

SECRET = "wh-s3cret-do-not-log"
ALARM = build_alarm()
NOTICE = Notice(make_event("alarm.raised.v1", ALARM, source="certmon/alarmer", event_id="ev-1"), ALARM)
DELIVERY = Delivery(
    ChannelKind.WEBHOOK, ("chat",), "shop-team", "default", idempotency_key("ev-1", ChannelKind.WEBHOOK, "chat")
)


@pytest.fixture
def sink():
    """A running sink."""
    with start_webhook_sink() as running:
        yield running


def sender(sink: WebhookSink, *, policy: AddressPolicy | None = None, **receiver) -> WebhookSender:
    """A sender with one webhook, `chat`, posting to the sink's `/hook?x=1`."""
    fields = {"url": f"{sink.url}/hook?x=1", "timeout": 2} | receiver
    return WebhookSender(
        {"chat": WebhookChannel.model_validate(fields)},
        policy=policy or AddressPolicy(),
        public_url="https://certmon.example.com",
        environ={"WEBHOOK_SECRET": SECRET, "CHAT_TOKEN": "Bearer t0ken"},
    )


async def send(webhooks: WebhookSender) -> str | None:
    """Send the one delivery and close the client."""
    try:
        return await webhooks.send(DELIVERY, NOTICE)
    finally:
        await webhooks.aclose()


async def test_cloudevents_format_posts_the_alarm_event_signed(sink):
    """The CloudEvent goes as structured JSON, signed over the exact body, with a stable delivery id."""
    await send(sender(sink, format="cloudevents", secret_env="WEBHOOK_SECRET", headers={"X-Team": "shop"}))
    [got] = sink.received
    assert got.path == "/hook?x=1"
    assert got.headers["content-type"] == "application/cloudevents+json"
    body = json.loads(got.body)
    assert (body["id"], body["type"], body["specversion"]) == ("ev-1", "io.certmon.alarm.raised.v1", "1.0")
    assert body["data"]["alarm_id"] == "alarm-1"
    expected = hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-certmon-signature"] == f"sha256={expected}"
    assert got.headers["x-certmon-delivery"] == hashlib.sha256(DELIVERY.idempotency_key.encode()).hexdigest()
    assert got.headers["x-team"] == "shop"
    assert got.headers["host"] == f"127.0.0.1:{sink.port}"


async def test_slack_format_posts_text_and_blocks(sink):
    """A Slack-compatible message has the subject as text and the details and view link in blocks."""
    await send(sender(sink, format="slack", headers_env={"Authorization": "CHAT_TOKEN"}))
    [got] = sink.received
    body = json.loads(got.body)
    assert body["text"] == "[certmon] CRITICAL raised: shop.example.com:443 expires in 5 days"
    assert [b["type"] for b in body["blocks"]] == ["section", "section", "context"]
    assert "https://certmon.example.com/certificates/" in json.dumps(body["blocks"])
    assert got.headers["authorization"] == "Bearer t0ken"
    assert "x-certmon-signature" not in got.headers


async def test_generic_format_posts_the_alarm_signed_from_a_file(sink, tmp_path):
    """The generic format is the alarm event's payload, and a secret_file signs it too."""
    (tmp_path / "secret").write_text(SECRET + "\n", encoding="utf-8")
    await send(sender(sink, secret_file=str(tmp_path / "secret")))
    [got] = sink.received
    assert json.loads(got.body)["alarm_id"] == "alarm-1" and got.headers["content-type"] == "application/json"
    expected = hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-certmon-signature"] == f"sha256={expected}"


@pytest.mark.parametrize(
    ("status", "transient"),
    [(500, True), (503, True), (408, True), (429, True), (400, False), (404, False), (301, False)],
)
async def test_reply_status_decides_whether_to_retry(sink, status, transient):
    """5xx, 408 and 429 are worth retrying; any other non-2xx reply is not."""
    sink.status = status
    with pytest.raises(DeliveryError, match=f"HTTP {status}") as raised:
        await send(sender(sink))
    assert raised.value.transient is transient


async def test_a_server_that_does_not_answer_is_a_transient_timeout(sink):
    """A hanging receiver is cut off after the configured timeout, and that is worth retrying."""
    sink.hang = 5
    with pytest.raises(DeliveryError, match="no reply within 1s") as raised:
        await send(sender(sink, timeout=1))
    assert raised.value.transient


async def test_nothing_listening_is_transient():
    """A refused connection is worth retrying."""
    with start_webhook_sink() as gone:
        port = gone.port
    webhooks = WebhookSender(
        {"chat": WebhookChannel(url=f"http://127.0.0.1:{port}/")}, policy=AddressPolicy(), public_url="http://x"
    )
    with pytest.raises(DeliveryError) as raised:
        await send(webhooks)
    assert raised.value.transient


async def test_denied_address_is_permanent_and_never_connected_to(sink):
    """A host resolving into scanning.deny is refused before connecting, for good, saying why."""
    policy = AddressPolicy(deny=networks(["127.0.0.0/8"]))
    with pytest.raises(DeliveryError, match=r"127\.0\.0\.1, denied by scanning\.deny") as raised:
        await send(sender(sink, policy=policy))
    assert not raised.value.transient
    assert sink.received == []


async def test_default_policy_denies_cloud_metadata_addresses(sink):
    """With scanning's default deny list a webhook cannot reach the metadata service."""
    webhooks = WebhookSender(
        {"chat": WebhookChannel(url="http://169.254.169.254/latest/meta-data/")},
        policy=AddressPolicy.from_scanning(Scanning()),
        public_url="http://x",
    )
    with pytest.raises(DeliveryError, match="denied") as raised:
        await send(webhooks)
    assert not raised.value.transient


async def test_missing_secret_is_permanent_and_the_secret_never_logged(sink):
    """An unset secret variable fails for good; a set one never shows in the logs."""
    with pytest.raises(DeliveryError, match="NOPE is not set") as raised:
        await send(sender(sink, secret_env="NOPE"))
    assert not raised.value.transient
    with structlog.testing.capture_logs() as logs:
        await send(sender(sink, secret_env="WEBHOOK_SECRET"))
    assert logs and SECRET not in repr(logs) and "/hook" not in repr(logs)
