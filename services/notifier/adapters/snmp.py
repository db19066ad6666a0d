"""SNMP traps with pysnmp 7 (asyncio): v2c with a community, v3 USM at noAuthNoPriv, authNoPriv or authPriv.

Each alarm event becomes one `CERTMON-MIB` notification (`mib/CERTMON-MIB.txt`) whose varbinds are built from
raw OIDs under the receiver's enterprise arc, so sending needs no compiled MIB. certmon is the authoritative
engine of its v3 traps: each receiver gets one `SnmpEngine` with the fixed `engine_id` of its config, built on
its first trap and reused for every later one; the receiver registers the user under that id.

A trap goes through pysnmp's message dispatcher (RFC 3412 `sendPdu`), not its high-level `send_notification`:
the receiver's community or USM user and its UDP transport are configured once per engine (again when a secret
changes), and the variable bindings are BER-encoded here once per trap, then handed to pysnmp inside a v2 trap
PDU. pysnmp still numbers the request, adds the USM header, encrypts and authenticates; the datagram is the one
`send_notification` sends. The high-level API would resolve every varbind against a MIB view, check it against
VACM and build it as pyasn1 objects, which took most of a trap's CPU (see benchmarks/README.md).

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
from pyasn1.codec.ber import encoder  # type: ignore[import-untyped]  # pyasn1 ships no type information
from pyasn1.type import univ  # type: ignore[import-untyped]  # pyasn1 ships no type information
from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    USM_AUTH_HMAC96_SHA,
    USM_AUTH_HMAC192_SHA256,
    USM_AUTH_HMAC384_SHA512,
    USM_AUTH_NONE,
    USM_PRIV_CFB128_AES,
    USM_PRIV_CFB256_AES_BLUMENTHAL,
    USM_PRIV_NONE,
    SnmpEngine,
    UdpTransportTarget,
)
from pysnmp.proto.api import v2c
from pysnmp.proto.error import StatusInformation
from pysnmp.proto.rfc1902 import Integer32, ObjectIdentifier, OctetString, Unsigned32

from services.notifier.adapters.rendering import one_line, subject_line, target_label
from services.notifier.domain.deliveries import Delivery, Notice
from services.notifier.ports import DeliveryError
from shared.config import SnmpReceiver
from shared.config.schema import DEFAULT_ENTERPRISE_OID
from shared.events import AlarmEvent
from shared.template_checks import BoundedSandbox, TemplateFailed, render_bounded

log = structlog.get_logger(__name__)

MIB_MODULE: Final = "CERTMON-MIB"
#: USM derives keys from passphrases of at least 8 characters (RFC 3414 §11.2); net-snmp refuses shorter ones.
MIN_USM_KEY_CHARS: Final = 8
#: What a message template may produce before it is stopped; the trap's message keeps 1024 characters of it.
MAX_TEMPLATE_OUTPUT = 64 * 1024
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


def _ber_length(size: int) -> bytes:
    """BER definite length in its shortest form, as pyasn1 writes it."""
    if size < 0x80:
        return bytes((size,))
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets), *octets))


def _ber_sequence(body: bytes) -> bytes:
    return b"\x30" + _ber_length(len(body)) + body


@dataclass(frozen=True)
class _Community:
    """The v2c community read for one trap."""

    name: str


@dataclass(frozen=True)
class _UsmUser:
    """The v3 user and keys read for one trap; the protocols are always explicit (pysnmp's default is HMAC-MD5)."""

    name: str
    auth_protocol: tuple[int, ...]
    auth_key: str | None
    priv_protocol: tuple[int, ...]
    priv_key: str | None

    @property
    def security_level(self) -> int:
        """SnmpSecurityLevel (RFC 3411): noAuthNoPriv 1, authNoPriv 2, authPriv 3."""
        if self.auth_key is None:
            return 1
        return 2 if self.priv_key is None else 3


_Credentials = _Community | _UsmUser
#: Message processing model, security model, security name and level: what RFC 3412's sendPdu takes.
_Security = tuple[int, int, OctetString, int]
#: The row of SNMP-COMMUNITY-MIB's snmpCommunityTable holding a receiver's community (one engine per receiver).
_COMMUNITY_INDEX = "certmon"
_MP_V2C, _MP_V3 = 1, 3
_SECURITY_MODEL_V2C, _SECURITY_MODEL_USM = 2, 3
_PDU_VERSION_V2 = 1


@dataclass
class _Route:
    """One receiver's engine and what its traps reuse: the UDP socket, the credentials configured in the engine,
    the encoded varbind names and, for a receiver given as an IP address, the address."""

    engine: SnmpEngine
    names: dict[ObjectIdentifier, bytes] = field(default_factory=dict)
    literal_address: tuple[str, int] | None = None
    _configured: tuple[_Credentials, _Security] | None = None
    _transport_open: bool = False

    def __post_init__(self) -> None:
        # The engine's SNMPv2-MIB::sysUpTime.0: each clone of its value is the time since the engine started.
        (sys_up_time,) = self.engine.get_mib_builder().import_symbols("__SNMPv2-MIB", "sysUpTime")
        self._up_time = sys_up_time.getSyntax()
        self._up_time_name = encoder.encode(ObjectIdentifier(sys_up_time.getName()))

    async def address(self, receiver: SnmpReceiver) -> tuple[str, int]:
        """The receiver's IPv4 address and port; a host name is resolved for every trap (its address may move),
        an IP address only once."""
        if self.literal_address is not None:
            return self.literal_address
        target = await UdpTransportTarget.create((receiver.host, receiver.port), timeout=receiver.timeout)
        address: tuple[str, int] = target.transport_address
        if _is_ip_address(receiver.host):
            self.literal_address = address
        return address

    async def send(
        self, address: tuple[str, int], credentials: _Credentials, pairs: list[tuple[ObjectIdentifier, Any]]
    ) -> None:
        """Send one SNMPv2-Trap-PDU of `sysUpTime.0` and the pairs to `address`, or raise PySnmpError; on return
        the datagram has been handed to the socket."""
        if not self._transport_open:
            await self._open()
        mp_model, security_model, security_name, security_level = self._configure(credentials)
        pdu = v2c.SNMPv2TrapPDU()
        v2c.apiPDU.set_defaults(pdu)  # the next request-id, error-status and error-index 0
        # The variable-bindings already encoded: pyasn1 writes an Any's octets as they are.
        pdu.setComponentByPosition(
            3, univ.Any(self._varbind_list(pairs)), verifyConstraints=False, matchTags=False, matchConstraints=False
        )
        # No context engine id (the engine's own) and the default context, as pysnmp's ContextData() has them.
        self.engine.message_dispatcher.send_pdu(
            self.engine,
            udp.DOMAIN_NAME,
            address,
            mp_model,
            security_model,
            security_name,
            security_level,
            None,
            b"",
            _PDU_VERSION_V2,
            pdu,
            False,
        )

    async def _open(self) -> None:
        transport = udp.UdpAsyncioTransport()
        # What transport.open_client_mode() does, but awaited: it would only schedule the socket's creation, and
        # the first trap would wait in a queue until the event loop ran again (lost if the sender closed first).
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: transport, family=transport.SOCK_FAMILY)
        config.add_transport(self.engine, udp.DOMAIN_NAME, transport)
        self._transport_open = True

    def _configure(self, credentials: _Credentials) -> _Security:
        """Hold the credentials in the engine; unchanged ones cost nothing, a rotated secret replaces the previous
        one (for v3, its keys are localized again, once)."""
        if self._configured is not None and self._configured[0] == credentials:
            return self._configured[1]
        security: _Security
        if isinstance(credentials, _Community):
            config.add_v1_system(self.engine, _COMMUNITY_INDEX, credentials.name)  # replaces the row's community
            security = (_MP_V2C, _SECURITY_MODEL_V2C, OctetString(_COMMUNITY_INDEX), 1)
        else:
            if self._configured is not None:
                config.delete_v3_user(self.engine, credentials.name)
            config.add_v3_user(
                self.engine,
                credentials.name,
                credentials.auth_protocol,
                credentials.auth_key,
                credentials.priv_protocol,
                credentials.priv_key,
            )
            security = (_MP_V3, _SECURITY_MODEL_USM, OctetString(credentials.name), credentials.security_level)
        self._configured = (credentials, security)
        return security

    def _varbind_list(self, pairs: list[tuple[ObjectIdentifier, Any]]) -> bytes:
        """The PDU's variable-bindings in BER: `sysUpTime.0` first (RFC 3416 §4.2.6), then the pairs; names are
        encoded once per route, values by pyasn1 on every trap."""
        encoded = [_ber_sequence(self._up_time_name + encoder.encode(self._up_time.clone()))]
        for oid, value in pairs:
            name = self.names.get(oid)
            if name is None:
                name = self.names[oid] = encoder.encode(oid)
            encoded.append(_ber_sequence(name + encoder.encode(value)))
        return _ber_sequence(b"".join(encoded))


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
        env = BoundedSandbox(undefined=jinja2.StrictUndefined, autoescape=False)
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
        credentials = self._credentials(name, receiver)
        varbinds = trap_varbinds(
            notice.alarm,
            owner=delivery.owner,
            message=self._message(name, delivery, notice),
            enterprise_oid=receiver.enterprise_oid,
        )
        route = self._route(name, receiver)
        try:
            async with asyncio.timeout(receiver.timeout):
                address = await route.address(receiver)
                await route.send(address, credentials, varbinds)
        except TimeoutError as exc:
            raise self._failed(delivery, receiver, f"timed out after {receiver.timeout:g} s") from exc
        except StatusInformation as exc:
            raise self._failed(delivery, receiver, str(exc.get("errorIndication", exc))) from exc
        except (PySnmpError, OSError) as exc:
            raise self._failed(delivery, receiver, f"{type(exc).__name__}: {exc}") from exc
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
            rendered = render_bounded(template, context, limit=MAX_TEMPLATE_OUTPUT)
        except TemplateFailed as exc:
            raise DeliveryError(f"message_template of SNMP receiver {name!r}: {exc}", transient=False) from exc
        return one_line(rendered, limit=1024)

    def _credentials(self, name: str, receiver: SnmpReceiver) -> _Credentials:
        if receiver.version == "v2c":
            community = self._secret(name, "community", receiver.community_env, receiver.community_file)
            if community is None:  # the schema requires one; a receiver built without validation lacks it
                raise DeliveryError(f"SNMP receiver {name!r} has no community_env or community_file", transient=False)
            return _Community(community)
        if receiver.user is None:  # the schema requires one for v3, as above
            raise DeliveryError(f"SNMP receiver {name!r} has no user", transient=False)
        auth_key = self._secret(name, "auth_key", receiver.auth_key_env, receiver.auth_key_file)
        priv_key = self._secret(name, "priv_key", receiver.priv_key_env, receiver.priv_key_file)
        for label, key in (("auth_key", auth_key), ("priv_key", priv_key)):
            if key is not None and len(key) < MIN_USM_KEY_CHARS:
                raise DeliveryError(
                    f"{label} of SNMP receiver {name!r} is shorter than {MIN_USM_KEY_CHARS} characters",
                    transient=False,
                )
        if auth_key is None:
            return _UsmUser(receiver.user, USM_AUTH_NONE, None, USM_PRIV_NONE, None)
        if priv_key is None:
            return _UsmUser(receiver.user, _AUTH_PROTOCOLS[receiver.auth_protocol], auth_key, USM_PRIV_NONE, None)
        return _UsmUser(
            receiver.user,
            _AUTH_PROTOCOLS[receiver.auth_protocol],
            auth_key,
            _PRIV_PROTOCOLS[receiver.priv_protocol],
            priv_key,
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
