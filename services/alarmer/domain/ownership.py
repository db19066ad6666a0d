"""Who owns an alarm and how often it is recalled to them: the configured target behind an evaluation, its
owners and its reminder cadence per `certmon.yaml` (pure)."""

from typing import cast, get_args

from shared.config import CertificateFacts, CertmonConfig, resolve_owners, resolve_policy
from shared.events import CertificateInfo, Evaluation, OwnerRef, Target, TargetRef
from shared.events.target import Protocol

_PROTOCOLS: frozenset[str] = frozenset(get_args(Protocol))


def target_from_ref(ref: TargetRef) -> Target:
    """The scan target an evaluation's `TargetRef` describes (no owner: the config knows that)."""
    if ref.file is not None:
        return Target(file=ref.file, server=ref.server)
    protocol = cast(Protocol, ref.protocol) if ref.protocol in _PROTOCOLS else "tls"
    return Target(host=ref.host, port=ref.port or 443, sni=ref.sni, protocol=protocol, server=ref.server)


def configured_target(config: CertmonConfig, evaluation: Evaluation) -> Target:
    """The config's target with the evaluation's key (with its owner), else one built from the evaluation.

    A server the evaluator resolved from the address fills in when the config entry names none.
    """
    return target_for(config, evaluation.target_key, evaluation.target)


def target_for(config: CertmonConfig, target_key: str, ref: TargetRef) -> Target:
    """The config's target with `target_key` (with its owner), else one built from `ref`; a server `ref` names
    fills in when the config entry names none."""
    for target in config.scan_targets():
        if target.key == target_key:
            if target.server is None and ref.server is not None:
                return target.model_copy(update={"server": ref.server})
            return target
    return target_from_ref(ref)


def _tags(config: CertmonConfig, target: Target) -> tuple[str, ...]:
    tags: list[str] = []
    for entry in config.targets:
        if entry.to_target(config.defaults).key == target.key:
            tags.extend(entry.tags)
    if target.server is not None and target.server in config.servers:
        tags.extend(config.servers[target.server].tags)
    return tuple(dict.fromkeys(tags))


def certificate_facts(config: CertmonConfig, target: Target, certificate: CertificateInfo | None) -> CertificateFacts:
    """What certificate rules match on for `certificate` served by `target` (only the tags without one)."""
    if certificate is None:
        return CertificateFacts(tags=_tags(config, target))
    return CertificateFacts(
        fingerprint_sha256=certificate.fingerprint_sha256,
        subject=certificate.subject,
        san=tuple(certificate.san),
        tags=_tags(config, target),
    )


def owners_for(config: CertmonConfig, target: Target, certificate: CertificateInfo | None) -> list[OwnerRef]:
    """The owners to notify about `certificate` on `target` (without one: the target's or default owner)."""
    return resolve_owners(config, target, certificate_facts(config, target, certificate))


def reminder_seconds(
    config: CertmonConfig, target: Target, certificate: CertificateInfo | None, level: str
) -> int | None:
    """Seconds between reminders of an open alarm at `level` about `certificate` on `target`, per the owner's,
    server's and certificate rules' cadences over the defaults; None when that level gets no reminders."""
    return resolve_policy(config, target, certificate_facts(config, target, certificate)).reminder_seconds(level)
