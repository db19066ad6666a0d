"""The `certmon.yaml` schema. Its keys are a contract: extend, never rename.

Secrets are never inline: `*_env` names an environment variable and `*_file` a file.
"""

import re
from collections.abc import Iterator
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, field_validator, model_validator

from shared.config.base import Strict
from shared.config.compact import CompactModels
from shared.config.reports import Reports
from shared.events.target import Profile, Protocol, Target

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}

#: Ports whose service speaks STARTTLS first; a target on one of them implies its protocol.
WELL_KNOWN_STARTTLS_PORTS: dict[int, Protocol] = {
    25: "smtp",
    587: "smtp",
    143: "imap",
    110: "pop3",
    21: "ftp",
    389: "ldap",
    5222: "xmpp",
    5432: "postgres",
}


def parse_duration(value: object) -> int:
    """`15m`, `1h`, `1d`, `30s`, `2w` or a number of seconds → seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a string like 15m, 1h or 1d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 15m, 1h, 1d)")
        seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return int(seconds)


Duration = Annotated[int, BeforeValidator(parse_duration)]


def _cidr(value: str) -> str:
    ip_network(value, strict=False)  # raises ValueError with the reason
    return value


#: An IP network (`10.0.0.0/8`) or a single address (`10.0.0.5`).
Cidr = Annotated[str, AfterValidator(_cidr)]
#: A severity a policy may give a finding code, or `off` to drop it.
SeverityOverride = Literal["critical", "warning", "info", "notice", "off"]


class Thresholds(Strict):
    """Days before expiry at which each level starts (critical ≤ warning ≤ info)."""

    info_days: int | None = Field(default=None, ge=0)
    warning_days: int | None = Field(default=None, ge=0)
    critical_days: int | None = Field(default=None, ge=0)


#: A reminder cadence: a duration, or `off` for no reminders at that level.
Cadence = Duration | Literal["off"]


class Reminders(Strict):
    """How often an open, unacknowledged alarm is notified again, per level; unset keys inherit."""

    critical: Cadence | None = None
    warning: Cadence | None = None
    info: Cadence | None = None


#: The cadence where `certmon.yaml` sets none: critical daily, warning weekly, info never.
DEFAULT_REMINDERS = Reminders(critical=86400, warning=604800, info="off")


class Trust(Strict):
    """Trust store: the Mozilla bundle plus `ca_files`, or only them with `replace_default`."""

    ca_files: list[Path] = Field(default_factory=list)
    replace_default: bool = False


class Defaults(Strict):
    """What applies where nothing more specific says otherwise."""

    owner: str | None = None
    interval: Duration = 3600
    profile: Profile = "expiry"
    thresholds: Thresholds = Thresholds(info_days=90, warning_days=30, critical_days=7)
    severities: dict[str, SeverityOverride] = Field(default_factory=dict)
    unreachable_critical_after: int = Field(default=3, ge=1)
    reminders: Reminders = DEFAULT_REMINDERS


class EmailChannel(Strict):
    """The SMTP relay."""

    host: str
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    use_tls: bool = False
    from_: str = Field(alias="from")
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    timeout: Duration = 30
    templates: Path | None = Field(
        default=None, description="a directory whose alarm.txt.j2 / alarm.html.j2 replace the packaged templates"
    )
    ack_link_expires: Duration = Field(default=7 * 86400, description="how long an email's acknowledge link works")


def _one_secret(owner: BaseModel, env: str, file: str) -> bool:
    return getattr(owner, env) is not None or getattr(owner, file) is not None


#: The root of CERTMON-MIB: RFC 5612's documentation enterprise number until the project has its own.
DEFAULT_ENTERPRISE_OID = "1.3.6.1.4.1.32473"


def _enterprise_oid(value: str) -> str:
    if not re.fullmatch(r"1\.3\.6\.1\.4\.1(\.\d+)+", value):
        raise ValueError("an enterprise arc is an OID under 1.3.6.1.4.1, e.g. 1.3.6.1.4.1.32473")
    return value


class SnmpReceiver(Strict):
    """An SNMP trap receiver: v2c with a community, or v3 (USM) as `user` with optional auth and privacy keys.

    v3 traps are sent by certmon as the authoritative engine, so `engine_id` is fixed (the receiver registers
    the user under it: `createUser -e 0x<engine_id> ...` in snmptrapd.conf).
    """

    host: str
    port: int = Field(default=162, ge=1, le=65535)
    version: Literal["v2c", "v3"] = "v2c"
    community_env: str | None = None
    community_file: Path | None = None
    user: str | None = None
    auth_protocol: Literal["SHA", "SHA-256", "SHA-512"] = "SHA-256"
    auth_key_env: str | None = None
    auth_key_file: Path | None = None
    priv_protocol: Literal["AES-128", "AES-256"] = "AES-128"
    priv_key_env: str | None = None
    priv_key_file: Path | None = None
    engine_id: str | None = Field(default=None, description="hex, 5 to 32 octets, e.g. 8000000001020304")
    enterprise_oid: Annotated[str, AfterValidator(_enterprise_oid)] = DEFAULT_ENTERPRISE_OID
    message_template: str | None = Field(
        default=None,
        description="Jinja2 (sandboxed) for the message varbind; the alarm's fields are its variables "
        "(`certmon config validate` and the notifier's start check its syntax)",
    )
    timeout: Duration = 5

    @field_validator("engine_id")
    @classmethod
    def _engine_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        normal = value.lower().removeprefix("0x").replace(":", "")
        if not re.fullmatch(r"(?:[0-9a-f]{2}){5,32}", normal):
            raise ValueError("engine_id is 5 to 32 octets in hex, e.g. 8000000001020304")
        return normal

    @model_validator(mode="after")
    def _credentials(self) -> "SnmpReceiver":
        if self.community_env is not None and self.community_file is not None:
            raise ValueError("give community_env or community_file, not both")
        for name in ("auth_key", "priv_key"):
            if getattr(self, f"{name}_env") is not None and getattr(self, f"{name}_file") is not None:
                raise ValueError(f"give {name}_env or {name}_file, not both")
        if self.version == "v2c":
            if not _one_secret(self, "community_env", "community_file"):
                raise ValueError("a v2c receiver needs community_env or community_file")
            return self
        if not self.user:
            raise ValueError("a v3 receiver needs user")
        if self.engine_id is None:
            raise ValueError("a v3 receiver needs engine_id (the receiver registers the user under it)")
        if _one_secret(self, "priv_key_env", "priv_key_file") and not _one_secret(
            self, "auth_key_env", "auth_key_file"
        ):
            raise ValueError("privacy (priv_key_*) needs authentication (auth_key_*) too")
        return self

    @property
    def security_level(self) -> Literal["noAuthNoPriv", "authNoPriv", "authPriv"]:
        """The v3 security level the keys given imply."""
        if not _one_secret(self, "auth_key_env", "auth_key_file"):
            return "noAuthNoPriv"
        return "authPriv" if _one_secret(self, "priv_key_env", "priv_key_file") else "authNoPriv"


class WebhookChannel(Strict):
    """An HTTP endpoint of a chat or incident tool: the alarm as CloudEvents, Slack-compatible or generic JSON."""

    url: str
    format: Literal["cloudevents", "slack", "generic"] = "generic"
    secret_env: str | None = None
    secret_file: Path | None = None
    headers: dict[str, str] = Field(default_factory=dict, description="extra request headers (no secrets)")
    headers_env: dict[str, str] = Field(
        default_factory=dict, description="headers whose value comes from an environment variable, e.g. a token"
    )
    timeout: Duration = 10

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^\s/?#@]+(?::\d+)?(?:[/?#]\S*)?", value):
            raise ValueError("a webhook url is http:// or https:// with a host (no user:password@)")
        return value

    @field_validator("headers", "headers_env")
    @classmethod
    def _header_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header_value in value.items():
            if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", name) or any(c in header_value for c in "\r\n"):
                raise ValueError(f"{name!r} is not a valid header")
        return value

    @model_validator(mode="after")
    def _secret(self) -> "WebhookChannel":
        if self.secret_env is not None and self.secret_file is not None:
            raise ValueError("give secret_env or secret_file, not both")
        return self


class DeliveryRetry(Strict):
    """How a failing delivery is retried: `attempts` in process with backoff, then again from the delivery log
    (each round `backoff` doubling up to `max_backoff`) until `give_up_after` from the first attempt."""

    attempts: int = Field(default=3, ge=1, le=20)
    backoff: Duration = 2
    max_backoff: Duration = 600
    give_up_after: Duration = 86400


class Channels(Strict):
    """Delivery channels."""

    email: EmailChannel | None = None
    snmp: dict[str, SnmpReceiver] = Field(default_factory=dict)
    webhook: dict[str, WebhookChannel] = Field(default_factory=dict)
    retry: DeliveryRetry = DeliveryRetry()


class Owner(Strict):
    """A team or person, how they are reached, and the policy they want for what they own."""

    email: list[str] = Field(default_factory=list)
    delivery: Literal["group", "individual"] = "group"
    snmp: list[str] = Field(default_factory=list)
    webhook: list[str] = Field(default_factory=list)
    thresholds: Thresholds | None = None
    severities: dict[str, SeverityOverride] = Field(default_factory=dict)
    reminders: Reminders | None = None

    @field_validator("email")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address or any(c in address for c in "\r\n ,;<>"):
                raise ValueError(f"{address!r} is not an email address")
        return value


class ServerEntry(Strict):
    """A server: the addresses it answers on and who owns it."""

    addresses: list[Cidr] = Field(default_factory=list)
    owner: str | None = None
    thresholds: Thresholds | None = None
    severities: dict[str, SeverityOverride] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    reminders: Reminders | None = None


class Scanning(Strict):
    """How hard the scanner may push, and where it may connect (checked on the resolved address it connects to)."""

    deny: list[Cidr] = Field(
        default_factory=lambda: ["169.254.0.0/16", "fe80::/10", "100.100.100.200/32", "fd00:ec2::254/128"],
        description="CIDRs never connected to (link-local and cloud metadata by default)",
    )
    allow: list[Cidr] = Field(default_factory=list, description="CIDRs allowed even inside `deny`; empty: no exception")
    per_host_concurrency: int = Field(default=4, ge=1)
    concurrency: int = Field(default=64, ge=1)
    connect_timeout: Duration = 5
    handshake_timeout: Duration = 10
    target_timeout: Duration = 60


class DiscoverySweep(Strict):
    """CIDR ranges swept on a list of ports on a schedule; every TLS endpoint found becomes a target."""

    name: str
    cidrs: list[Cidr]
    ports: list[int] = Field(default_factory=lambda: [443])
    interval: Duration = 86400
    owner: str | None = None
    server: str | None = None
    profile: Profile | None = None


class TargetEntry(Strict):
    """An endpoint (`host`) or a certificate file (`file`) to watch."""

    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    sni: str | None = None
    protocol: Protocol | None = None
    server: str | None = None
    owner: str | None = None
    file: Path | None = None
    interval: Duration | None = None
    profile: Profile | None = None
    tags: list[str] = Field(default_factory=list)
    also_without_sni: bool = False

    @model_validator(mode="after")
    def _host_or_file(self) -> "TargetEntry":
        if (self.host is None) == (self.file is None):
            raise ValueError("a target has exactly one of `host` or `file`")
        return self

    def to_target(self, defaults: Defaults) -> Target:
        """The scan target, with defaults applied and well-known ports implying their protocol."""
        if self.file is not None:
            return Target(
                file=str(self.file),
                owner=self.owner,
                server=self.server,
                interval_seconds=self.interval or defaults.interval,
                profile="expiry",
            )
        port = self.port or 443
        protocol = self.protocol or WELL_KNOWN_STARTTLS_PORTS.get(port, "tls")
        return Target(
            host=self.host,
            port=port,
            sni=self.sni,
            protocol=protocol,
            server=self.server,
            owner=self.owner,
            interval_seconds=self.interval or defaults.interval,
            profile=self.profile or defaults.profile,
            also_without_sni=self.also_without_sni,
        )


class CertificateMatch(Strict):
    """How a certificate rule recognises a certificate; every given field must match."""

    san: str | None = None
    subject: str | None = None
    fingerprint_sha256: str | None = None
    tag: str | None = None

    @field_validator("fingerprint_sha256")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        normal = value.replace(":", "").lower()
        if not re.fullmatch(r"[0-9a-f]{64}|[0-9a-f]{1,63}\.\.\.[0-9a-f]{1,63}", normal):
            raise ValueError("a SHA-256 fingerprint is 64 hex digits (colons allowed)")
        return normal

    @model_validator(mode="after")
    def _something(self) -> "CertificateMatch":
        if not any((self.san, self.subject, self.fingerprint_sha256, self.tag)):
            raise ValueError("match needs at least one of san, subject, fingerprint_sha256, tag")
        return self


class CertificateRule(Strict):
    """Certificate-based ownership and policy."""

    match: CertificateMatch
    owner: str | None = None
    critical: bool = False
    thresholds: Thresholds | None = None
    severities: dict[str, SeverityOverride] = Field(default_factory=dict)
    reminders: Reminders | None = None


#: The shortest history retention: the monthly report reads the previous calendar month and the week before it.
MIN_HISTORY_RETENTION = 62 * 86400


class HistoryRetention(Strict):
    """How long the reporter keeps history: evaluations last seen, and alarms resolved, longer ago than `retention`
    are deleted (with the alarms' transitions and deliveries); a target not evaluated for that long leaves the
    dashboard. An unchanged evaluation is never this old while its target is still evaluated."""

    retention: Duration = Field(default=400 * 86400, description="at least 62d: the monthly report reads that far back")

    @field_validator("retention")
    @classmethod
    def _long_enough(cls, value: int) -> int:
        if value < MIN_HISTORY_RETENTION:
            raise ValueError("history.retention must be at least 62d (the monthly report reads that far back)")
        return value


class CertmonConfig(Strict):
    """The whole `certmon.yaml`."""

    trust: Trust = Trust()
    defaults: Defaults = Defaults()
    channels: Channels = Channels()
    owners: dict[str, Owner] = Field(default_factory=dict)
    servers: dict[str, ServerEntry] = Field(default_factory=dict)
    targets: CompactModels[TargetEntry] = Field(default_factory=lambda: CompactModels(TargetEntry))
    certificates: list[CertificateRule] = Field(default_factory=list)
    scanning: Scanning = Scanning()
    discovery: list[DiscoverySweep] = Field(default_factory=list)
    reports: Reports = Reports()
    history: HistoryRetention = HistoryRetention()

    def scan_targets(self) -> list[Target]:
        """Every configured target as a scan target."""
        return list(self.iter_scan_targets())

    def iter_scan_targets(self) -> Iterator[Target]:
        """Every configured target as a scan target, one at a time: an estate's targets are built as they are
        read rather than all at once."""
        return (entry.to_target(self.defaults) for entry in self.targets)
