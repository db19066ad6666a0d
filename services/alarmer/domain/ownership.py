"""Who owns an alarm and how often it is recalled to them: the configured target behind an evaluation, its
owners and its reminder cadence per `certmon.yaml` (pure).

`Ownership` indexes one config's targets by key and their tags once, so resolving an evaluation costs the same
with 100,000 configured targets as with ten; bootstrap builds it and shares it between the evaluation handler and
the reminder sweep.
"""

from typing import cast, get_args

from shared.config import CertificateFacts, CertmonConfig, TargetTags, resolve_owners, resolve_policy
from shared.events import CertificateInfo, Evaluation, OwnerRef, Target, TargetRef
from shared.events.target import Protocol

_PROTOCOLS: frozenset[str] = frozenset(get_args(Protocol))


def target_from_ref(ref: TargetRef) -> Target:
    """The scan target an evaluation's `TargetRef` describes (no owner: the config knows that)."""
    if ref.file is not None:
        return Target(file=ref.file, server=ref.server)
    protocol = cast(Protocol, ref.protocol) if ref.protocol in _PROTOCOLS else "tls"
    return Target(host=ref.host, port=ref.port or 443, sni=ref.sni, protocol=protocol, server=ref.server)


class Ownership:
    """The targets, owners and tags `config` gives alarms, indexed by target key.

    The index keeps the position of each key's first entry under `targets` (the one a scan of the config finds
    first), not the entry or its `Target`: the config keeps its targets compact and rebuilds the one asked for,
    while a model per target (over a kilobyte each) would make the index several times larger.
    """

    def __init__(self, config: CertmonConfig) -> None:
        self.config = config
        self._positions: dict[str, int] = {}
        for position, entry in enumerate(config.targets):
            self._positions.setdefault(entry.to_target(config.defaults).key, position)
        self._tags = TargetTags.of(config)

    @classmethod
    def of(cls, config: CertmonConfig, shared: "Ownership | None" = None) -> "Ownership":
        """`shared`, the index bootstrap built of `config`, or else a new one (a consumer built without it);
        refuses an index of another config, which would resolve owners from a different file."""
        if shared is None:
            return cls(config)
        if shared.config is not config:
            raise ValueError("the ownership index given was built from another config")
        return shared

    def configured_target(self, evaluation: Evaluation) -> Target:
        """The config's target with the evaluation's key (with its owner), else one built from the evaluation.

        A server the evaluator resolved from the address fills in when the config entry names none.
        """
        return self.target_for(evaluation.target_key, evaluation.target)

    def target_for(self, target_key: str, ref: TargetRef) -> Target:
        """The config's target with `target_key` (with its owner), else one built from `ref`; a server `ref`
        names fills in when the config entry names none."""
        position = self._positions.get(target_key)
        if position is None:
            return target_from_ref(ref)
        target = self.config.targets[position].to_target(self.config.defaults)
        if target.server is None and ref.server is not None:
            return target.model_copy(update={"server": ref.server})
        return target

    def certificate_facts(self, target: Target, certificate: CertificateInfo | None) -> CertificateFacts:
        """What certificate rules match on for `certificate` served by `target` (only the tags without one)."""
        tags = self._tags(target.key, target.server)
        if certificate is None:
            return CertificateFacts(tags=tags)
        return CertificateFacts(
            fingerprint_sha256=certificate.fingerprint_sha256,
            subject=certificate.subject,
            san=tuple(certificate.san),
            tags=tags,
        )

    def owners_for(self, target: Target, certificate: CertificateInfo | None) -> list[OwnerRef]:
        """The owners to notify about `certificate` on `target` (without one: the target's or default owner)."""
        return resolve_owners(self.config, target, self.certificate_facts(target, certificate))

    def reminder_seconds(self, target: Target, certificate: CertificateInfo | None, level: str) -> int | None:
        """Seconds between reminders of an open alarm at `level` about `certificate` on `target`, per the
        owner's, server's and certificate rules' cadences over the defaults; None when that level gets none."""
        facts = self.certificate_facts(target, certificate)
        return resolve_policy(self.config, target, facts).reminder_seconds(level)
