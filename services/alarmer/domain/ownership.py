"""Who owns an alarm: the configured target behind an evaluation and its owners per `certmon.yaml` (pure)."""

from typing import cast, get_args

from shared.config import CertificateFacts, CertmonConfig, resolve_owners
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
    for target in config.scan_targets():
        if target.key == evaluation.target_key:
            if target.server is None and evaluation.target.server is not None:
                return target.model_copy(update={"server": evaluation.target.server})
            return target
    return target_from_ref(evaluation.target)


def _tags(config: CertmonConfig, target: Target) -> tuple[str, ...]:
    tags: list[str] = []
    for entry in config.targets:
        if entry.to_target(config.defaults).key == target.key:
            tags.extend(entry.tags)
    if target.server is not None and target.server in config.servers:
        tags.extend(config.servers[target.server].tags)
    return tuple(dict.fromkeys(tags))


def owners_for(config: CertmonConfig, target: Target, certificate: CertificateInfo | None) -> list[OwnerRef]:
    """The owners to notify about `certificate` on `target` (without one: the target's or default owner)."""
    if certificate is None:
        facts = CertificateFacts(tags=_tags(config, target))
    else:
        facts = CertificateFacts(
            fingerprint_sha256=certificate.fingerprint_sha256,
            subject=certificate.subject,
            san=tuple(certificate.san),
            tags=_tags(config, target),
        )
    return resolve_owners(config, target, facts)
