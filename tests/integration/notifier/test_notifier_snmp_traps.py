"""SnmpSender against net-snmp's snmptrapd on 127.0.0.1: every transition over v2c and v3, read back by
CERTMON-MIB names, and what a trap sender can and cannot detect; and, on a plain UDP socket, the v2c datagram
compared octet for octet with the one pysnmp's own API builds."""

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto.api import v2c

from services.notifier.adapters.snmp import SnmpSender, trap_varbinds
from services.notifier.domain.deliveries import ChannelKind, Delivery, Notice
from services.notifier.ports import DeliveryError
from shared.config import SnmpReceiver
from shared.events import Acknowledgement, AlarmEvent, make_event
from tests.support.alarms import NOW, build_alarm
from tests.support.snmptrapd import Snmptrapd, V3User, start_snmptrapd

pytestmark = pytest.mark.integration

ENGINE_ID = "8000000001020304"
COMMUNITY = "certmon-test-community"
AUTH_KEY = "auth-key-for-tests"
PRIV_KEY = "priv-key-for-tests"
ENVIRON = {"COMMUNITY": COMMUNITY, "AUTH": AUTH_KEY, "PRIV": PRIV_KEY, "WRONG": "not-the-priv-key"}
USERS = [
    V3User("sha256-aes128", ENGINE_ID, "SHA-256", AUTH_KEY, "AES", PRIV_KEY),
    V3User("sha512-aes256", ENGINE_ID, "SHA-512", AUTH_KEY, "AES256", PRIV_KEY),
    V3User("sha-aes128", ENGINE_ID, "SHA", AUTH_KEY, "AES", PRIV_KEY),
    V3User("auth-only", ENGINE_ID, "SHA-256", AUTH_KEY),
    V3User("no-auth", ENGINE_ID),
]


@pytest.fixture(scope="module")
def trapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmptrapd]:
    """One snmptrapd for the module, with the v2c community and every v3 user of these tests."""
    with start_snmptrapd(tmp_path_factory.mktemp("snmptrapd"), community=COMMUNITY, users=USERS) as server:
        yield server


@pytest.fixture
def seen(trapd: Snmptrapd) -> int:
    """How many traps snmptrapd had printed before the test: the test's own traps come after them."""
    return len(trapd.traps())


def receiver(trapd: Snmptrapd, **fields: Any) -> SnmpReceiver:
    """A receiver pointing at the test's snmptrapd (v2c with the test community unless told otherwise)."""
    base: dict[str, Any] = {"host": "127.0.0.1", "port": trapd.port, "community_env": "COMMUNITY", "timeout": 2}
    if fields.get("version") == "v3":
        base.pop("community_env")
        base["engine_id"] = ENGINE_ID
    return SnmpReceiver(**{**base, **fields})


@pytest.fixture
async def sender_for() -> AsyncIterator[Any]:
    """Build senders over the given receivers; they are closed (sockets, timers) when the test ends."""
    senders: list[SnmpSender] = []

    def build(receivers: Mapping[str, SnmpReceiver], environ: Mapping[str, str] = ENVIRON) -> SnmpSender:
        sender = SnmpSender(receivers, environ=environ)
        senders.append(sender)
        return sender

    yield build
    for sender in senders:
        sender.close()


async def send(sender: SnmpSender, name: str, alarm: AlarmEvent) -> str | None:
    """Deliver the alarm event to receiver `name` on behalf of shop-team."""
    event = make_event(f"alarm.{alarm.transition}.v1", alarm, source="certmon/alarmer")
    delivery = Delivery(ChannelKind.SNMP, (name,), "shop-team", "default", f"{event.id}|snmp|{name}")
    return await sender.send(delivery, Notice(event, alarm))


LIFECYCLE = [
    build_alarm(),
    build_alarm(transition="changed", level="warning", previous_level="critical"),
    build_alarm(transition="reminded", level="warning", reminders_sent=1),
    build_alarm(
        transition="acknowledged",
        level="warning",
        state="acknowledged",
        acknowledgement=Acknowledgement(by="alice@example.com", at=NOW),
    ),
    build_alarm(transition="resolved", level="ok", previous_level="warning", state="resolved"),
]
NOTIFICATIONS = [
    "CERTMON-MIB::certmonAlarmRaised",
    "CERTMON-MIB::certmonAlarmChanged",
    "CERTMON-MIB::certmonAlarmReminder",
    "CERTMON-MIB::certmonAlarmAcknowledged",
    "CERTMON-MIB::certmonAlarmResolved",
]


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"version": "v3", "user": "sha256-aes128", "auth_key_env": "AUTH", "priv_key_env": "PRIV"},
    ],
    ids=["v2c", "v3-authPriv"],
)
async def test_every_transition_arrives_as_its_certmon_mib_notification(
    trapd: Snmptrapd, seen: int, sender_for: Any, fields: dict[str, Any]
) -> None:
    """raised, changed, reminded, acknowledged and resolved arrive in order, named and decoded by CERTMON-MIB."""
    sender = sender_for({"nms": receiver(trapd, **fields)})
    for alarm in LIFECYCLE:
        assert await send(sender, "nms", alarm) is None
    traps = (await trapd.wait_for_traps(seen + 5))[seen:]
    assert [trap.notification for trap in traps] == NOTIFICATIONS
    raised, changed, _, acknowledged, resolved = (trap.varbinds for trap in traps)
    assert raised["CERTMON-MIB::certmonAlarmId.0"] == "STRING: alarm-1"
    assert raised["CERTMON-MIB::certmonAlarmLevel.0"] == "INTEGER: critical(1)"
    assert raised["CERTMON-MIB::certmonAlarmPreviousLevel.0"] == "INTEGER: none(5)"
    assert raised["CERTMON-MIB::certmonAlarmTrigger.0"] == "INTEGER: expiry(1)"
    assert raised["CERTMON-MIB::certmonAlarmState.0"] == "INTEGER: open(1)"
    assert raised["CERTMON-MIB::certmonTargetHost.0"] == "STRING: shop.example.com"
    assert raised["CERTMON-MIB::certmonTargetPort.0"] == "Gauge32: 443"
    assert raised["CERTMON-MIB::certmonCertFingerprint.0"] == "STRING: " + "3b" * 32
    assert raised["CERTMON-MIB::certmonCertSubject.0"] == "STRING: CN=shop.example.com"
    assert raised["CERTMON-MIB::certmonCertNotAfter.0"] == "STRING: 2026-3-6,18:0:0.0,+0:0"
    assert raised["CERTMON-MIB::certmonCertDaysLeft.0"] == "INTEGER: 5 days"
    assert raised["CERTMON-MIB::certmonAlarmOwner.0"] == "STRING: shop-team"
    assert raised["CERTMON-MIB::certmonAlarmMessage.0"] == (
        "STRING: [certmon] CRITICAL raised: shop.example.com:443 expires in 5 days"
    )
    assert changed["CERTMON-MIB::certmonAlarmPreviousLevel.0"] == "INTEGER: critical(1)"
    assert acknowledged["CERTMON-MIB::certmonAlarmState.0"] == "INTEGER: acknowledged(2)"
    assert acknowledged["CERTMON-MIB::certmonAlarmAckBy.0"] == "STRING: alice@example.com"
    assert resolved["CERTMON-MIB::certmonAlarmLevel.0"] == "INTEGER: ok(4)"
    assert resolved["CERTMON-MIB::certmonAlarmState.0"] == "INTEGER: resolved(3)"


@pytest.mark.parametrize(
    "fields",
    [
        {"user": "sha512-aes256", "auth_protocol": "SHA-512", "priv_protocol": "AES-256", "priv_key_env": "PRIV"},
        {"user": "sha-aes128", "auth_protocol": "SHA", "priv_protocol": "AES-128", "priv_key_env": "PRIV"},
        {"user": "auth-only", "auth_protocol": "SHA-256"},
    ],
    ids=["SHA-512+AES-256", "SHA+AES-128", "authNoPriv"],
)
async def test_v3_protocols_and_security_levels_are_understood_by_net_snmp(
    trapd: Snmptrapd, seen: int, sender_for: Any, fields: dict[str, Any]
) -> None:
    """Each configured auth and privacy protocol yields a trap net-snmp authenticates and decrypts."""
    sender = sender_for({"nms": receiver(trapd, version="v3", auth_key_env="AUTH", **fields)})
    await send(sender, "nms", build_alarm())
    (trap,) = (await trapd.wait_for_traps(seen + 1))[seen:]
    assert trap.notification == "CERTMON-MIB::certmonAlarmRaised"


async def test_v3_no_auth_no_priv_trap_arrives(trapd: Snmptrapd, seen: int, sender_for: Any) -> None:
    """A user without keys sends at noAuthNoPriv."""
    sender = sender_for({"nms": receiver(trapd, version="v3", user="no-auth")})
    await send(sender, "nms", build_alarm())
    (trap,) = (await trapd.wait_for_traps(seen + 1))[seen:]
    assert trap.varbinds["CERTMON-MIB::certmonAlarmLevel.0"] == "INTEGER: critical(1)"


async def test_a_custom_message_template_is_the_message_varbind(trapd: Snmptrapd, seen: int, sender_for: Any) -> None:
    """The receiver's template sees the alarm's fields; its output, made one line, is certmonAlarmMessage."""
    template = "{{ level | upper }} {{ target.host }} ({{ certificate.subject }}) for {{ owner }}\nline two"
    sender = sender_for({"nms": receiver(trapd, message_template=template)})
    await send(sender, "nms", build_alarm())
    (trap,) = (await trapd.wait_for_traps(seen + 1))[seen:]
    assert trap.varbinds["CERTMON-MIB::certmonAlarmMessage.0"] == (
        "STRING: CRITICAL shop.example.com (CN=shop.example.com) for shop-team line two"
    )


async def test_a_wrong_v3_key_is_sent_without_error_and_dropped_by_the_receiver(
    trapd: Snmptrapd, seen: int, sender_for: Any
) -> None:
    """Traps are unacknowledged: a wrong privacy key cannot be detected by the sender (documented limit)."""
    sender = sender_for(
        {"nms": receiver(trapd, version="v3", user="sha256-aes128", auth_key_env="AUTH", priv_key_env="WRONG")}
    )
    lines = len(trapd.lines)
    assert await send(sender, "nms", build_alarm()) is None
    await asyncio.sleep(0.5)
    assert len(trapd.traps()) == seen
    assert "security service 3 error parsing ScopedPDU" in trapd.lines[lines:]


async def test_a_missing_community_variable_fails_permanently_and_sends_nothing(
    trapd: Snmptrapd, seen: int, sender_for: Any
) -> None:
    """Without its secret the trap is not sent; trying again cannot help."""
    sender = sender_for({"nms": receiver(trapd)}, environ={})
    with pytest.raises(DeliveryError, match="environment variable COMMUNITY is not set") as caught:
        await send(sender, "nms", build_alarm())
    assert caught.value.transient is False
    assert len(trapd.traps()) == seen


async def test_a_port_nobody_listens_on_returns_within_the_timeout(sender_for: Any) -> None:
    """A UDP trap to a closed port is sent and forgotten: no hang, no error (nothing answers a trap)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    sender = sender_for({"nms": SnmpReceiver(host="127.0.0.1", port=closed_port, community_env="COMMUNITY", timeout=1)})
    started = time.monotonic()
    for _ in range(3):
        assert await send(sender, "nms", build_alarm()) is None
    assert time.monotonic() - started < 1.0


async def test_a_host_that_does_not_resolve_is_a_transient_failure_within_the_timeout(sender_for: Any) -> None:
    """Name resolution failing (or hanging) is worth retrying, and never outlasts the receiver's timeout."""
    sender = sender_for({"nms": SnmpReceiver(host="nms.certmon-test.invalid", community_env="COMMUNITY", timeout=1)})
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        await send(sender, "nms", build_alarm())
    assert caught.value.transient is True
    assert time.monotonic() - started < 1.5


async def test_a_rotated_v3_key_is_used_from_the_next_trap(trapd: Snmptrapd, seen: int, sender_for: Any) -> None:
    """The keys are read on every send: after the wrong privacy key is replaced, the next trap is decrypted."""
    environ = dict(ENVIRON, ROTATED="not-the-priv-key")
    fields = {"version": "v3", "user": "sha256-aes128", "auth_key_env": "AUTH", "priv_key_env": "ROTATED"}
    sender = sender_for({"nms": receiver(trapd, **fields)}, environ=environ)
    await send(sender, "nms", build_alarm(alarm_id="before-rotation"))
    environ["ROTATED"] = PRIV_KEY
    await send(sender, "nms", build_alarm(alarm_id="after-rotation"))
    (trap,) = (await trapd.wait_for_traps(seen + 1))[seen:]
    assert trap.varbinds["CERTMON-MIB::certmonAlarmId.0"] == "STRING: after-rotation"


@pytest.fixture
def udp_sink() -> Iterator[socket.socket]:
    """A UDP socket on 127.0.0.1 that nobody answers from: the test reads the datagrams sent to it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.setblocking(False)
        yield sink


async def received(sink: socket.socket) -> bytes:
    """The next datagram on the sink, within two seconds."""
    return await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sink, 65535), 2)


def pysnmp_trap(community: str, request_id: Any, up_time: Any, varbinds: list[tuple[Any, Any]]) -> bytes:
    """The v2c trap message pysnmp's protocol API builds from these fields, encoded."""
    pdu = v2c.SNMPv2TrapPDU()
    v2c.apiTrapPDU.set_defaults(pdu)
    v2c.apiTrapPDU.set_request_id(pdu, request_id)
    v2c.apiTrapPDU.set_varbinds(pdu, [(v2c.apiTrapPDU.sysUpTime, up_time), *varbinds])
    message = v2c.Message()
    v2c.apiMessage.set_defaults(message)
    v2c.apiMessage.set_community(message, community)
    v2c.apiMessage.set_pdu(message, pdu)
    return bytes(encoder.encode(message))


@pytest.mark.parametrize(
    "alarm",
    [
        build_alarm(),
        build_alarm(certificate=None, days_remaining=None, target=build_alarm().target.model_copy(update={"port": 0})),
        build_alarm(alarm_id="a" * 200, days_remaining=-3.5, previous_level="warning"),
    ],
    ids=["raised", "no-certificate", "long-id-negative-days"],
)
async def test_a_v2c_trap_is_octet_for_octet_the_one_pysnmp_builds(
    udp_sink: socket.socket, sender_for: Any, alarm: AlarmEvent
) -> None:
    """sysUpTime.0, then the alarm's varbinds in order with their types, in a message pysnmp's API would encode
    identically (a 400-character message takes BER's two-octet lengths)."""
    port = udp_sink.getsockname()[1]
    template = "{{ 'é' * 400 }}"
    sender = sender_for(
        {"nms": SnmpReceiver(host="127.0.0.1", port=port, community_env="COMMUNITY", message_template=template)}
    )
    await send(sender, "nms", alarm)
    datagram = await received(udp_sink)
    message, rest = decoder.decode(datagram, asn1Spec=v2c.Message())
    assert rest == b""
    pdu = v2c.apiMessage.get_pdu(message)
    (up_time_name, up_time), *_ = v2c.apiTrapPDU.get_varbinds(pdu)
    assert up_time_name == v2c.apiTrapPDU.sysUpTime
    varbinds = trap_varbinds(alarm, owner="shop-team", message="é" * 400)
    expected = pysnmp_trap(COMMUNITY, v2c.apiTrapPDU.get_request_id(pdu), up_time, varbinds)
    assert datagram == expected


async def test_a_rotated_community_replaces_the_old_one_in_the_next_trap(
    udp_sink: socket.socket, sender_for: Any
) -> None:
    """One trap per send, with the community read for it: the previous community is not sent any more."""
    environ = {"COMMUNITY": "first-community"}
    port = udp_sink.getsockname()[1]
    sender = sender_for({"nms": SnmpReceiver(host="127.0.0.1", port=port, community_env="COMMUNITY")}, environ)
    await send(sender, "nms", build_alarm())
    environ["COMMUNITY"] = "second-community"
    await send(sender, "nms", build_alarm())
    await send(sender, "nms", build_alarm())
    communities = []
    for _ in range(3):
        message, _ = decoder.decode(await received(udp_sink), asn1Spec=v2c.Message())
        communities.append(bytes(v2c.apiMessage.get_community(message)))
    await asyncio.sleep(0.2)
    with pytest.raises(BlockingIOError):
        udp_sink.recv(65535)
    assert communities == [b"first-community", b"second-community", b"second-community"]


async def test_the_first_trap_has_left_when_send_returns(udp_sink: socket.socket) -> None:
    """send() opens the socket before sending: a sender closed right after its first trap has still sent it."""
    port = udp_sink.getsockname()[1]
    sender = SnmpSender({"nms": SnmpReceiver(host="127.0.0.1", port=port, community_env="COMMUNITY")}, environ=ENVIRON)
    await send(sender, "nms", build_alarm())
    sender.close()
    message, _ = decoder.decode(await received(udp_sink), asn1Spec=v2c.Message())
    assert bytes(v2c.apiMessage.get_community(message)) == COMMUNITY.encode()
