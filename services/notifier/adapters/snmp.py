"""SNMP traps with pysnmp 7 (asyncio): v2c with a community, v3 USM at noAuthNoPriv, authNoPriv or authPriv.

Each alarm event becomes one `CERTMON-MIB` notification (`mib/CERTMON-MIB.txt`) whose varbinds are built from
raw OIDs under the receiver's enterprise arc, so sending needs no compiled MIB. certmon is the authoritative
engine of its v3 traps: each receiver gets one `SnmpEngine` with the fixed `engine_id` of its config, built on
its first trap and reused for every later one; the receiver registers the user under that id.

What a sender can and cannot know: a trap is one unacknowledged UDP datagram. A name that does not resolve, a
missing or unreadable secret or a key shorter than USM allows are detected here. A receiver that is down, a
port nobody listens on, a wrong community, a wrong v3 key or engine id, or a firewall that drops the datagram
are not: the receiver discards such a trap silently and the send still succeeds. Only an SNMP inform (which the
receiver answers) would tell; the channel's schema has no option for it yet.

Errors: `DeliveryError(transient=False)` for an unknown receiver, a missing secret, a key shorter than 8
characters or a message template that fails; `DeliveryError(transient=True)` for name resolution, socket
errors and the receiver's timeout. Secrets are read on every send (a rotated one is picked up) and never logged.
"""

import asyncio
import functools
import ipaddress
import math
import os
import re
import struct
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final

import jinja2
import structlog
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    USM_AUTH_HMAC96_SHA,
    USM_AUTH_HMAC192_SHA256,
    USM_AUTH_HMAC384_SHA512,
    USM_AUTH_NONE,
    USM_PRIV_CFB128_AES,
    USM_PRIV_CFB256_AES_BLUMENTHAL,
    USM_PRIV_NONE,
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    send_notification,
)
from pysnmp.proto.rfc1902 import Integer32, ObjectIdentifier, OctetString, Unsigned32

from services.notifier.adapters.rendering import one_line, subject_line, target_label
from services.notifier.domain.deliveries import Delivery, Notice
from services.notifier.ports import DeliveryError
from shared.config import SnmpReceiver
from shared.config.schema import DEFAULT_ENTERPRISE_OID
from shared.events import AlarmEvent

log = structlog.get_logger(__name__)

MIB_MODULE: Final = "CERTMON-MIB"
#: USM derives keys from passphrases of at least 8 characters (RFC 3414 §11.2); net-snmp refuses shorter ones.
MIN_USM_KEY_CHARS: Final = 8
_MIB_FILE = "CERTMON-MIB.txt"
_SHIPPED_ARC = re.compile(r"::= \{ enterprises 32473 \}")
_ENTERPRISES = "1.3.6.1.4.1"
_SNMP_TRAP_OID = ObjectIdentifier("1.3.6.1.6.3.1.1.4.1.0")

#: Notifications under `<arc>.0`, so that an SNMPv1 translation yields enterprise `<arc>` and specific trap n.
NOTIFICATIONS: Final[Mapping[str, int]] = {
    "raised": 1,
    "changed": 2,
    "reminded": 3,
    "acknowledged": 4,
    "resolved": 5,
}
#: The enumerations of `CertmonLevel`, `certmonAlarmTrigger` and `certmonAlarmState`.
LEVELS: Final[Mapping[str, int]] = {"critical": 1, "warning": 2, "info": 3, "ok": 4}
NO_LEVEL: Final = 5
TRIGGERS: Final[Mapping[str, int]] = {"expiry": 1, "security": 2, "chain": 3, "validity": 4, "reachability": 5}
STATES: Final[Mapping[str, int]] = {"open": 1, "acknowledged": 2, "resolved": 3}
#: `certmonCertNotAfter` and `certmonCertDaysLeft` when no certificate was seen, as the MIB defines them.
NO_DATE: Final = bytes(8)
NO_DAYS: Final = 2**31 - 1

_AUTH_PROTOCOLS = {"SHA": USM_AUTH_HMAC96_SHA, "SHA-256": USM_AUTH_HMAC192_SHA256, "SHA-512": USM_AUTH_HMAC384_SHA512}
# AES-256 with the key extension of draft-blumenthal-aes-usm, the one net-snmp calls AES-256 (`AES256`).
_PRIV_PROTOCOLS = {"AES-128": USM_PRIV_CFB128_AES, "AES-256": USM_PRIV_CFB256_AES_BLUMENTHAL}


def mib_text(enterprise_oid: str = DEFAULT_ENTERPRISE_OID) -> str:
    """CERTMON-MIB with its MODULE-IDENTITY at `enterprise_oid`, an arc under 1.3.6.1.4.1 (ValueError if not)."""
    if not re.fullmatch(r"1\.3\.6\.1\.4\.1(\.\d+)+", enterprise_oid):
        raise ValueError(f"{enterprise_oid!r} is not an OID under enterprises (1.3.6.1.4.1)")
    shipped = resources.files(__package__).joinpath("mib", _MIB_FILE).read_text(encoding="utf-8")
    arcs = enterprise_oid.removeprefix(_ENTERPRISES + ".").split(".")
    # Each node above the module gets a name: libsmi warns about a node only implied by `{ enterprises 1 2 }`.
    parent, nodes = "enterprises", []
    for depth, arc in enumerate(arcs[:-1], start=1):
        nodes.append(f"certmonArc{depth} OBJECT IDENTIFIER ::= {{ {parent} {arc} }}")
        parent = f"certmonArc{depth}"
    placed = f"::= {{ {parent} {arcs[-1]} }}" + "".join(f"\n\n{node}" for node in nodes)
    return _SHIPPED_ARC.sub(placed, shipped, count=1)


def mib_directory() -> Path:
    """The folder holding the shipped CERTMON-MIB.txt (for `-M` of net-snmp tools)."""
    return Path(str(resources.files(__package__).joinpath("mib")))


def _utf8(value: str | None, limit: int) -> OctetString:
    """UTF-8 octets, cut to `limit` octets at a character boundary."""
    encoded = (value or "").encode("utf-8")[:limit]
    return OctetString(encoded.decode("utf-8", errors="ignore").encode("utf-8"))


def date_and_time(moment: datetime) -> bytes:
    """SNMPv2-TC DateAndTime, 11 octets in UTC: year, month, day, hour, minute, second, deci-seconds, '+', 0, 0."""
    utc = moment.astimezone(UTC)
    return struct.pack(
        ">HBBBBBBcBB",
        utc.year,
        utc.month,
        utc.day,
        utc.hour,
        utc.minute,
        utc.second,
        utc.microsecond // 100_000,
        b"+",
        0,
        0,
    )


def trap_varbinds(
    alarm: AlarmEvent, *, owner: str, message: str, enterprise_oid: str = DEFAULT_ENTERPRISE_OID
) -> list[tuple[ObjectIdentifier, Any]]:
    """`snmpTrapOID.0` and the fifteen objects of the alarm's notification, in the MIB's order."""
    cert = alarm.certificate
    if alarm.days_remaining is None:
        days = NO_DAYS
    else:
        days = max(-(2**31), min(NO_DAYS - 1, math.floor(alarm.days_remaining)))
    ack = alarm.acknowledgement
    values: list[Any] = [
        _utf8(alarm.alarm_id, 128),
        Integer32(LEVELS[alarm.level]),
        Integer32(LEVELS[alarm.previous_level] if alarm.previous_level else NO_LEVEL),
        Integer32(TRIGGERS[alarm.key.trigger]),
        Integer32(STATES[alarm.state]),
        _utf8(alarm.target.host or alarm.target.file, 255),
        Unsigned32(alarm.target.port or 0),
        OctetString(cert.fingerprint_sha256.lower().encode("ascii") if cert else b""),
        _utf8(cert.subject if cert else None, 1024),
        OctetString(date_and_time(cert.not_after) if cert else NO_DATE),
        Integer32(days),
        OctetString((alarm.grade or "").encode("ascii")),
        _utf8(owner, 255),
        _utf8(ack.by if ack else None, 320),
        _utf8(message, 1024),
    ]
    notifications, objects = _object_ids(enterprise_oid)
    return [(_SNMP_TRAP_OID, notifications[alarm.transition]), *zip(objects, values, strict=True)]


@functools.cache
def _object_ids(
    enterprise_oid: str,
) -> tuple[Mapping[str, ObjectIdentifier], tuple[ObjectIdentifier, ...]]:
    # Built once per configured arc: a pyasn1 OID costs more to build than the rest of the varbinds together.
    arc = tuple(int(part) for part in enterprise_oid.split("."))
    notifications = {transition: ObjectIdentifier((*arc, 0, n)) for transition, n in NOTIFICATIONS.items()}
    return notifications, tuple(ObjectIdentifier((*arc, 1, column, 0)) for column in range(1, 16))


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass
class _Route:
    """What one receiver's traps reuse: the engine, and the varbind names it has resolved once."""

    engine: SnmpEngine
    names: dict[ObjectIdentifier, ObjectIdentity] = field(default_factory=dict)
    literal_target: UdpTransportTarget | None = None

    async def target(self, receiver: SnmpReceiver) -> UdpTransportTarget:
        """The receiver's address; a host name is resolved for every trap (its address may move), an IP
        address only once."""
        if self.literal_target is not None:
            return self.literal_target
        target = await UdpTransportTarget.create((receiver.host, receiver.port), timeout=receiver.timeout)
        if _is_ip_address(receiver.host):
            self.literal_target = target
        return target

    def varbinds(self, pairs: list[tuple[ObjectIdentifier, Any]]) -> list[ObjectType]:
        """The pairs as ObjectTypes over names resolved by an earlier trap (pysnmp skips resolved ones), which
        halves the CPU a trap costs."""
        types = []
        for oid, value in pairs:
            name = self.names.get(oid)
            if name is None:
                name = self.names[oid] = ObjectIdentity(oid)
            types.append(ObjectType(name, value))
        return types


class SnmpSender:
    """Sends each delivery as one trap to the receiver it names (`delivery.recipients == (receiver_name,)`)."""

    def __init__(
        self,
        receivers: Mapping[str, SnmpReceiver],
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._receivers = dict(receivers)
        self._environ = environ
        env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
        # Compiled once: bootstrap has checked their syntax (shared.template_checks), so compiling cannot fail here.
        self._templates = {
            name: env.from_string(receiver.message_template)
            for name, receiver in self._receivers.items()
            if receiver.message_template is not None
        }
        self._routes: dict[str, _Route] = {}

    async def send(self, delivery: Delivery, notice: Notice) -> str | None:
        """Send the alarm event as one trap, or raise DeliveryError; a sent trap may still be lost (see above)."""
        name = delivery.recipient
        receiver = self._receivers.get(name)
        if receiver is None:
            raise DeliveryError(f"no SNMP receiver named {name!r} in channels.snmp", transient=False)
        auth = self._auth(name, receiver)
        varbinds = trap_varbinds(
            notice.alarm,
            owner=delivery.owner,
            message=self._message(name, delivery, notice),
            enterprise_oid=receiver.enterprise_oid,
        )
        route = self._route(name, receiver)
        try:
            async with asyncio.timeout(receiver.timeout):
                target = await route.target(receiver)
                error, _, _, _ = await send_notification(
                    route.engine, auth, target, ContextData(), "trap", *route.varbinds(varbinds), lookupMib=False
                )
        except TimeoutError as exc:
            raise self._failed(delivery, receiver, f"timed out after {receiver.timeout:g} s") from exc
        except (PySnmpError, OSError) as exc:
            raise self._failed(delivery, receiver, f"{type(exc).__name__}: {exc}") from exc
        if error:
            raise self._failed(delivery, receiver, str(error))
        log.info(
            "snmp_trap_sent",
            key=delivery.idempotency_key,
            receiver=name,
            host=receiver.host,
            version=receiver.version,
            transition=notice.alarm.transition,
        )
        return None

    def close(self) -> None:
        """Close every engine's socket and timer; a later send builds the engine again."""
        for route in self._routes.values():
            route.engine.close_dispatcher()
        self._routes.clear()

    def _route(self, name: str, receiver: SnmpReceiver) -> _Route:
        route = self._routes.get(name)
        if route is None:
            if receiver.engine_id is None:  # v2c: the engine id never goes on the wire
                route = _Route(SnmpEngine())
            else:
                # pysnmp counts the engine's boots in $TMPDIR/__pysnmp/<engine id>/boots (receivers reject a v3
                # trap whose boots and time go backwards) and reads that file without closing it.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ResourceWarning)
                    engine = SnmpEngine(snmpEngineID=OctetString(hexValue=receiver.engine_id))
                route = _Route(engine)
            self._routes[name] = route
        return route

    def _failed(self, delivery: Delivery, receiver: SnmpReceiver, reason: str) -> DeliveryError:
        log.warning("snmp_trap_failed", key=delivery.idempotency_key, host=receiver.host, error=reason)
        return DeliveryError(f"SNMP trap to {receiver.host}:{receiver.port}: {reason}", transient=True)

    def _message(self, name: str, delivery: Delivery, notice: Notice) -> str:
        alarm = notice.alarm
        default = subject_line(alarm)
        template = self._templates.get(name)
        if template is None:
            return default
        # The alarm's fields as plain JSON values, and what a one-line message usually needs besides.
        context: dict[str, Any] = alarm.model_dump(mode="json")
        context.update(
            alarm_event_id=notice.event_id,
            trigger=alarm.key.trigger,
            target_label=target_label(alarm.target, alarm.key.target_key),
            owner=delivery.owner,
            receiver=name,
            default_message=default,
        )
        try:
            rendered = template.render(context)
        except jinja2.TemplateError as exc:
            raise DeliveryError(
                f"message_template of SNMP receiver {name!r}: {type(exc).__name__}: {exc}", transient=False
            ) from exc
        return one_line(rendered, limit=1024)

    def _auth(self, name: str, receiver: SnmpReceiver) -> CommunityData | UsmUserData:
        if receiver.version == "v2c":
            community = self._secret(name, "community", receiver.community_env, receiver.community_file)
            if community is None:  # the schema requires one; a receiver built without validation lacks it
                raise DeliveryError(f"SNMP receiver {name!r} has no community_env or community_file", transient=False)
            return CommunityData(community, mpModel=1)
        auth_key = self._secret(name, "auth_key", receiver.auth_key_env, receiver.auth_key_file)
        priv_key = self._secret(name, "priv_key", receiver.priv_key_env, receiver.priv_key_file)
        for label, key in (("auth_key", auth_key), ("priv_key", priv_key)):
            if key is not None and len(key) < MIN_USM_KEY_CHARS:
                raise DeliveryError(
                    f"{label} of SNMP receiver {name!r} is shorter than {MIN_USM_KEY_CHARS} characters",
                    transient=False,
                )
        return UsmUserData(
            receiver.user,
            authKey=auth_key,
            privKey=priv_key if auth_key is not None else None,
            # Always explicit: without a protocol pysnmp would fall back to HMAC-MD5 for a given key.
            authProtocol=_AUTH_PROTOCOLS[receiver.auth_protocol] if auth_key is not None else USM_AUTH_NONE,
            privProtocol=_PRIV_PROTOCOLS[receiver.priv_protocol]
            if auth_key is not None and priv_key is not None
            else USM_PRIV_NONE,
        )

    def _secret(self, name: str, label: str, env: str | None, file: Path | None) -> str | None:
        if env is not None:
            value = (self._environ if self._environ is not None else os.environ).get(env)
            if not value:
                raise DeliveryError(
                    f"{label} of SNMP receiver {name!r}: environment variable {env} is not set", transient=False
                )
            return value
        if file is not None:
            try:
                value = file.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise DeliveryError(
                    f"{label} of SNMP receiver {name!r}: cannot read {file}: {exc.strerror}", transient=False
                ) from exc
            if not value:
                raise DeliveryError(f"{label} of SNMP receiver {name!r}: {file} is empty", transient=False)
            return value
        return None
