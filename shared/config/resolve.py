"""Which server, certificate rules, owners and policy apply to a target or certificate.

Pure functions over a loaded `CertmonConfig` (schema semantics, no levels or findings): the evaluator uses
`resolve_policy`, the alarmer `resolve_owners`.
"""

import fnmatch
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network

from shared.config.schema import DEFAULT_REMINDERS, CertificateRule, CertmonConfig, Reminders, Thresholds
from shared.events.alarm import OwnerRef
from shared.events.target import Target


@dataclass(frozen=True)
class CertificateFacts:
    """What certificate rules can match on."""

    fingerprint_sha256: str | None = None
    subject: str | None = None
    san: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    """Thresholds and severity overrides in force for one certificate on one target."""

    info_days: int = 90
    warning_days: int = 30
    critical_days: int = 7
    severities: dict[str, str] = field(default_factory=dict)
    unreachable_critical_after: int = 3
    critical_certificate: bool = False
    sources: tuple[str, ...] = ("defaults",)
    #: Seconds between reminders per level (`critical`, `warning`, `info`); None: no reminders at that level.
    reminders: dict[str, int | None] = field(default_factory=dict)

    def reminder_seconds(self, level: str) -> int | None:
        """Seconds between reminders of an open alarm at `level`; None when it gets none (and for `ok`)."""
        return self.reminders.get(level)


def server_for(config: CertmonConfig, target: Target, address: str | None) -> str | None:
    """The server a target names, or else the one whose `addresses` include the address it resolved to."""
    if target.server is not None:
        return target.server
    if address is None:
        return None
    try:
        addr = ip_address(address)
    except ValueError:
        return None
    for name, server in config.servers.items():
        if any(addr in ip_network(a, strict=False) for a in server.addresses):
            return name
    return None


@dataclass(frozen=True)
class TargetTags:
    """The tags `certmon.yaml` gives a target: those of its entries under `targets` (a key listed twice gets both
    entries') and those of its server, in file order without repeats. Indexed once per config."""

    by_target: dict[str, tuple[str, ...]]
    by_server: dict[str, tuple[str, ...]]

    @classmethod
    def of(cls, config: CertmonConfig) -> "TargetTags":
        """The index of `config`'s target and server tags."""
        by_target: dict[str, tuple[str, ...]] = {}
        for entry in config.targets:
            if entry.tags:  # most of a large estate has none: keep the index to those that do
                key = entry.to_target(config.defaults).key
                by_target[key] = by_target.get(key, ()) + tuple(entry.tags)
        return cls(by_target, {name: tuple(server.tags) for name, server in config.servers.items()})

    def __call__(self, target_key: str, server: str | None) -> tuple[str, ...]:
        """The tags of the target `target_key`, served by `server` (None: no server)."""
        own = self.by_target.get(target_key, ())
        return tuple(dict.fromkeys(own + (self.by_server.get(server, ()) if server is not None else ())))


def _fingerprint_matches(pattern: str, fingerprint: str) -> bool:
    if "..." in pattern:  # an abbreviated fingerprint as people paste it: prefix...suffix
        head, tail = pattern.split("...", 1)
        return fingerprint.startswith(head) and fingerprint.endswith(tail)
    return fingerprint == pattern


def _san_matches(pattern: str, names: tuple[str, ...]) -> bool:
    pattern = pattern.lower()
    return any(name.lower() == pattern or fnmatch.fnmatchcase(name.lower(), pattern) for name in names)


def rule_matches(rule: CertificateRule, cert: CertificateFacts) -> bool:
    """Every field the rule's `match` gives must match the certificate."""
    m = rule.match
    if m.fingerprint_sha256 is not None and not (
        cert.fingerprint_sha256 and _fingerprint_matches(m.fingerprint_sha256, cert.fingerprint_sha256.lower())
    ):
        return False
    if m.san is not None and not _san_matches(m.san, cert.san):
        return False
    if m.subject is not None and not (cert.subject and fnmatch.fnmatchcase(cert.subject, m.subject)):
        return False
    return not (m.tag is not None and m.tag not in cert.tags)


def matching_rules(config: CertmonConfig, cert: CertificateFacts) -> list[tuple[int, CertificateRule]]:
    """The certificate rules that match, in file order (the first wins for ownership)."""
    return [(i, rule) for i, rule in enumerate(config.certificates) if rule_matches(rule, cert)]


def _describe(index: int, rule: CertificateRule) -> str:
    parts = [f"{k}={v}" for k, v in rule.match.model_dump(exclude_none=True).items()]
    return f"certificates[{index}] " + " ".join(parts)


def _owner_ref(config: CertmonConfig, name: str, rule: str) -> OwnerRef:
    owner = config.owners.get(name)
    if owner is None:
        return OwnerRef(name=name, rule=rule)
    return OwnerRef(
        name=name, email=owner.email, delivery=owner.delivery, snmp=owner.snmp, webhook=owner.webhook, rule=rule
    )


def resolve_owners(
    config: CertmonConfig, target: Target, cert: CertificateFacts, *, address: str | None = None
) -> list[OwnerRef]:
    """Owners to notify: certificate rule > target/server > default; a critical certificate gets both."""
    rules = [(i, r) for i, r in matching_rules(config, cert) if r.owner is not None]
    critical = any(r.critical for _, r in matching_rules(config, cert))
    server = server_for(config, target, address)
    infra: tuple[str, str] | None = None
    if target.owner is not None:
        infra = (target.owner, f"target {target.key}")
    elif server is not None and server in config.servers and config.servers[server].owner is not None:
        infra = (config.servers[server].owner or "", f"server {server}")
    owners: list[OwnerRef] = []
    if rules:
        index, rule = rules[0]
        owners.append(_owner_ref(config, rule.owner or "", _describe(index, rule)))
        if critical and infra is not None and infra[0] != rule.owner:
            owners.append(_owner_ref(config, infra[0], infra[1] + " (critical certificate)"))
    elif infra is not None:
        owners.append(_owner_ref(config, *infra))
    elif config.defaults.owner is not None:
        owners.append(_owner_ref(config, config.defaults.owner, "default"))
    return owners


def _apply_reminders(cadence: dict[str, int | None], reminders: Reminders | None) -> None:
    if reminders is None:
        return
    for level in ("critical", "warning", "info"):
        value = getattr(reminders, level)
        if value is not None:
            cadence[level] = None if value == "off" else int(value)


def _apply(policy: dict[str, object], thresholds: Thresholds | None, severities: dict[str, str]) -> None:
    if thresholds is not None:
        for name in ("info_days", "warning_days", "critical_days"):
            value = getattr(thresholds, name)
            if value is not None:
                policy[name] = value
    merged = dict(policy["severities"])  # type: ignore[call-overload]
    merged.update(severities)
    policy["severities"] = merged


def resolve_policy(
    config: CertmonConfig, target: Target, cert: CertificateFacts, *, address: str | None = None
) -> Policy:
    """Defaults, then the owner's policy, then the server's, then each matching certificate rule's (later wins);
    thresholds, severities and reminder cadences alike.

    The owner is the first one `resolve_owners` names, so policy follows the same ownership rules as alarms.
    """
    d = config.defaults
    values: dict[str, object] = {
        "info_days": d.thresholds.info_days if d.thresholds.info_days is not None else 90,
        "warning_days": d.thresholds.warning_days if d.thresholds.warning_days is not None else 30,
        "critical_days": d.thresholds.critical_days if d.thresholds.critical_days is not None else 7,
        "severities": dict(d.severities),
    }
    sources = ["defaults"]
    cadence: dict[str, int | None] = {}
    _apply_reminders(cadence, DEFAULT_REMINDERS)  # keys `defaults.reminders` leaves unset
    _apply_reminders(cadence, d.reminders)
    owners = resolve_owners(config, target, cert, address=address)
    if owners and owners[0].name in config.owners:
        own = config.owners[owners[0].name]
        _apply(values, own.thresholds, dict(own.severities))
        _apply_reminders(cadence, own.reminders)
        sources.append(f"owner {owners[0].name}")
    server = server_for(config, target, address)
    if server is not None and server in config.servers:
        srv = config.servers[server]
        _apply(values, srv.thresholds, dict(srv.severities))
        _apply_reminders(cadence, srv.reminders)
        sources.append(f"server {server}")
    critical = False
    for index, rule in matching_rules(config, cert):
        _apply(values, rule.thresholds, dict(rule.severities))
        _apply_reminders(cadence, rule.reminders)
        critical = critical or rule.critical
        sources.append(_describe(index, rule))
    return Policy(
        info_days=int(values["info_days"]),  # type: ignore[call-overload]
        warning_days=int(values["warning_days"]),  # type: ignore[call-overload]
        critical_days=int(values["critical_days"]),  # type: ignore[call-overload]
        severities=dict(values["severities"]),  # type: ignore[call-overload]
        unreachable_critical_after=d.unreachable_critical_after,
        critical_certificate=critical,
        sources=tuple(sources),
        reminders=cadence,
    )
