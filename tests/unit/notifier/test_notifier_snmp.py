"""The SNMP sender without a network: the varbinds CERTMON-MIB defines, the MIB for another arc, and the errors
found before anything is sent."""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pysnmp.proto.rfc1902 import Integer32, ObjectIdentifier, OctetString, Unsigned32

from services.notifier.adapters.snmp import (
    NO_DATE,
    NO_DAYS,
    NOTIFICATIONS,
    SnmpSender,
    date_and_time,
    mib_text,
    trap_varbinds,
)
from services.notifier.domain.deliveries import ChannelKind, Delivery, Notice
from services.notifier.ports import DeliveryError
from shared.config import SnmpReceiver
from shared.events import Acknowledgement, AlarmEvent, make_event
from tests.support.alarms import NOW, build_alarm

ARC = (1, 3, 6, 1, 4, 1, 32473)


def notice(alarm: AlarmEvent) -> Notice:
    """The notice of an alarm event as the alarmer publishes it."""
    return Notice(make_event(f"alarm.{alarm.transition}.v1", alarm, source="certmon/alarmer"), alarm)


def delivery(receiver: str) -> Delivery:
    """A delivery to one SNMP receiver on behalf of shop-team."""
    return Delivery(ChannelKind.SNMP, (receiver,), "shop-team", "default", f"event|snmp|{receiver}")


def values(alarm: AlarmEvent, **kwargs: Any) -> dict[str, Any]:
    """The varbind values by the MIB's object names (the trap OID under `trap`)."""
    names = [
        "trap",
        "id",
        "level",
        "previous_level",
        "trigger",
        "state",
        "host",
        "port",
        "fingerprint",
        "subject",
        "not_after",
        "days_left",
        "grade",
        "owner",
        "ack_by",
        "message",
    ]
    pairs = trap_varbinds(alarm, owner=kwargs.pop("owner", "shop-team"), message=kwargs.pop("message", "m"), **kwargs)
    return dict(zip(names, (value for _, value in pairs), strict=True))


def test_varbinds_are_the_trap_oid_then_the_fifteen_objects_under_the_arc() -> None:
    """snmpTrapOID.0 comes first, then certmonObjects 1 to 15, each as a scalar instance (.0)."""
    oids = [oid for oid, _ in trap_varbinds(build_alarm(), owner="shop-team", message="m")]
    assert oids[0] == ObjectIdentifier("1.3.6.1.6.3.1.1.4.1.0")
    assert oids[1:] == [ObjectIdentifier((*ARC, 1, column, 0)) for column in range(1, 16)]


@pytest.mark.parametrize(("transition", "number"), sorted(NOTIFICATIONS.items()))
def test_each_transition_is_its_own_notification_under_the_zero_arc(transition: str, number: int) -> None:
    """raised, changed, reminded, acknowledged, resolved are notifications 1 to 5 under `<arc>.0` (v1-translatable)."""
    assert values(build_alarm(transition=transition))["trap"] == ObjectIdentifier((*ARC, 0, number))


def test_a_raised_alarm_carries_its_level_target_and_certificate() -> None:
    """The values have the MIB's types: enumerations as INTEGER, the port Unsigned32, not-after DateAndTime."""
    got = values(build_alarm(grade="B"))
    assert got["id"] == OctetString(b"alarm-1")
    assert got["level"] == Integer32(1)  # critical(1)
    assert got["previous_level"] == Integer32(5)  # none(5)
    assert got["trigger"] == Integer32(1)  # expiry(1)
    assert got["state"] == Integer32(1)  # open(1)
    assert got["host"] == OctetString(b"shop.example.com")
    assert got["port"] == Unsigned32(443)
    assert got["fingerprint"] == OctetString(b"3b" * 32)
    assert got["subject"] == OctetString(b"CN=shop.example.com")
    assert got["not_after"] == OctetString(date_and_time(NOW + timedelta(days=5, hours=6)))
    assert got["days_left"] == Integer32(5)
    assert got["grade"] == OctetString(b"B")
    assert got["owner"] == OctetString(b"shop-team")
    assert got["ack_by"] == OctetString(b"")


def test_changed_acknowledged_and_resolved_carry_what_changed() -> None:
    """The previous level of a change, who acknowledged, and the resolved state."""
    changed = values(build_alarm(transition="changed", level="warning", previous_level="critical"))
    assert (changed["level"], changed["previous_level"]) == (Integer32(2), Integer32(1))
    ack = Acknowledgement(by="alice@example.com", at=NOW)
    acknowledged = values(build_alarm(transition="acknowledged", state="acknowledged", acknowledgement=ack))
    assert (acknowledged["state"], acknowledged["ack_by"]) == (Integer32(2), OctetString(b"alice@example.com"))
    resolved = values(build_alarm(transition="resolved", level="ok", previous_level="critical", state="resolved"))
    assert (resolved["level"], resolved["state"]) == (Integer32(4), Integer32(3))


def test_an_alarm_without_certificate_sends_the_mibs_placeholders() -> None:
    """An unreachable endpoint: empty fingerprint and subject, the all-zero date and 2147483647 days."""
    got = values(build_alarm(certificate=None, days_remaining=None))
    assert got["fingerprint"] == OctetString(b"")
    assert got["subject"] == OctetString(b"")
    assert got["not_after"] == OctetString(NO_DATE)
    assert got["days_left"] == Integer32(NO_DAYS)


def test_an_expired_certificate_has_negative_days_left_rounded_down() -> None:
    """Half a day past expiry is -1 day."""
    assert values(build_alarm(days_remaining=-0.5))["days_left"] == Integer32(-1)


def test_a_file_target_sends_its_path_and_port_zero() -> None:
    """certmonTargetHost holds the file's path when the target is a certificate file."""
    alarm = build_alarm(target={"file": "/etc/ssl/shop.pem"})
    got = values(alarm)
    assert (got["host"], got["port"]) == (OctetString(b"/etc/ssl/shop.pem"), Unsigned32(0))


def test_date_and_time_is_eleven_octets_in_utc() -> None:
    """A time in UTC+2 becomes the same instant in UTC, with deci-seconds and a +0:0 offset."""
    moment = datetime(2026, 3, 6, 20, 0, 5, 700_000, tzinfo=timezone(timedelta(hours=2)))
    assert date_and_time(moment) == bytes([0x07, 0xEA, 3, 6, 18, 0, 5, 7]) + b"+\x00\x00"
    assert date_and_time(moment.astimezone(UTC)) == date_and_time(moment)


def test_long_utf8_text_is_cut_at_a_character_boundary() -> None:
    """A subject of 1,000 two-octet characters is cut to at most 1,024 octets of valid UTF-8."""
    alarm = build_alarm()
    assert alarm.certificate is not None
    long = alarm.model_copy(
        update={"certificate": alarm.certificate.model_copy(update={"subject": "CN=" + "é" * 1000})}
    )
    subject = bytes(values(long)["subject"])
    assert len(subject) <= 1024
    assert subject.decode("utf-8").startswith("CN=éé")


def test_another_enterprise_arc_moves_every_oid() -> None:
    """With arc 1.3.6.1.4.1.99999.7 the notification is ...99999.7.0.1 and the objects ...99999.7.1.n.0."""
    pairs = trap_varbinds(build_alarm(), owner="o", message="m", enterprise_oid="1.3.6.1.4.1.99999.7")
    assert pairs[0][1] == ObjectIdentifier("1.3.6.1.4.1.99999.7.0.1")
    assert pairs[1][0] == ObjectIdentifier("1.3.6.1.4.1.99999.7.1.1.0")


def test_mib_text_puts_the_module_identity_at_the_given_arc() -> None:
    """Only the MODULE-IDENTITY's value changes; the shipped text is the default arc's."""
    default = mib_text()
    assert "::= { enterprises 32473 }" in default
    moved = mib_text("1.3.6.1.4.1.99999.7")
    placed = "::= { certmonArc1 7 }\n\ncertmonArc1 OBJECT IDENTIFIER ::= { enterprises 99999 }"
    assert placed in moved
    assert moved.replace(placed, "::= { enterprises 32473 }") == default
    assert "::= { enterprises 4242 }" in mib_text("1.3.6.1.4.1.4242")


@pytest.mark.parametrize("arc", ["1.3.6.1.2.1", "1.3.6.1.4.1", "not an oid", "1.3.6.1.4.1.5 "])
def test_mib_text_refuses_an_arc_outside_enterprises(arc: str) -> None:
    """The module must sit below 1.3.6.1.4.1."""
    with pytest.raises(ValueError, match="enterprises"):
        mib_text(arc)


def v3(**overrides: Any) -> SnmpReceiver:
    """A v3 authPriv receiver whose keys come from AUTH and PRIV."""
    fields: dict[str, Any] = {
        "host": "127.0.0.1",
        "version": "v3",
        "user": "certmon",
        "auth_key_env": "AUTH",
        "priv_key_env": "PRIV",
        "engine_id": "8000000001020304",
    }
    return SnmpReceiver(**{**fields, **overrides})


async def refused(sender: SnmpSender, receiver: str) -> DeliveryError:
    """The permanent DeliveryError the sender raises for this receiver."""
    with pytest.raises(DeliveryError) as caught:
        await sender.send(delivery(receiver), notice(build_alarm()))
    assert caught.value.transient is False
    return caught.value


async def test_an_unknown_receiver_is_a_permanent_failure() -> None:
    """A delivery naming a receiver that is not configured cannot succeed later."""
    error = await refused(SnmpSender({}), "nms")
    assert "no SNMP receiver named 'nms'" in str(error)


async def test_a_missing_community_variable_is_a_permanent_failure() -> None:
    """The error names the variable, never a value."""
    sender = SnmpSender({"nms": SnmpReceiver(host="127.0.0.1", community_env="NMS_COMMUNITY")}, environ={})
    assert "environment variable NMS_COMMUNITY is not set" in str(await refused(sender, "nms"))


async def test_an_unreadable_priv_key_file_is_a_permanent_failure(tmp_path: Path) -> None:
    """The privacy key's file is read at send time."""
    receiver = v3(priv_key_env=None, priv_key_file=tmp_path / "absent")
    sender = SnmpSender({"nms": receiver}, environ={"AUTH": "authpass1"})
    assert "priv_key of SNMP receiver 'nms': cannot read" in str(await refused(sender, "nms"))


@pytest.mark.parametrize("short", ["AUTH", "PRIV"])
async def test_a_key_shorter_than_eight_characters_is_refused_without_showing_it(short: str) -> None:
    """USM needs 8 characters at least; the message says which key, not what it is."""
    environ = {"AUTH": "authpass1", "PRIV": "privpass1", short: "s3cr3t!"}
    error = await refused(SnmpSender({"nms": v3()}, environ=environ), "nms")
    assert "shorter than 8 characters" in str(error)
    assert "s3cr3t!" not in str(error)


async def test_a_message_template_that_fails_is_a_permanent_failure() -> None:
    """A template naming a variable the alarm does not have fails the delivery with the template's error."""
    receiver = SnmpReceiver(host="127.0.0.1", community_env="C", message_template="{{ no_such_field }}")
    sender = SnmpSender({"nms": receiver}, environ={"C": "public"})
    assert "message_template of SNMP receiver 'nms'" in str(await refused(sender, "nms"))
