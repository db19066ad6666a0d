"""Evaluating one observation under a `certmon.yaml`: resolve the policy for its certificate, then judge it.

The handler uses this for every consumed observation, and `certmon check` calls it directly, in-process.

What the config says about a target (its tags, server, owner and policy) is a pure function of the config, the
target, the certificate's facts and the address, so it is memoised: an estate asks the same questions on every
scan. The config is keyed by identity: `CertmonConfig` is frozen (a loaded config never changes) but holds
dicts and lists, so it has no hash of its own.
"""

import functools
from dataclasses import dataclass, replace
from datetime import datetime

from services.evaluator.completion import IntermediateFinder
from services.evaluator.domain import ParsedCert, TrustStore, evaluate
from services.evaluator.domain.memo import BoundedMemo, Identity
from services.evaluator.domain.parse import parse_leaf
from shared.config import CertificateFacts, CertmonConfig, Policy, resolve_owners, resolve_policy, server_for
from shared.config.resolve import matching_rules
from shared.events.evaluation import Evaluation
from shared.events.observation import Observation
from shared.events.target import Target

#: Distinct resolutions kept: one per (server, owner, matching rules, address) an estate has, about.
RESOLUTION_CACHE_SIZE = 8192


@functools.lru_cache(maxsize=16)
def _tags_by_target(config: Identity[CertmonConfig]) -> dict[str, tuple[str, ...]]:
    """Each configured target's key → its tags, in file order (a key listed twice gets both entries' tags)."""
    tags: dict[str, tuple[str, ...]] = {}
    for entry in config.item.targets:
        key = entry.to_target(config.item.defaults).key
        tags[key] = tags.get(key, ()) + tuple(entry.tags)
    return tags


def _rule_facts(leaf: ParsedCert) -> CertificateFacts:
    """What certificate rules match on that the leaf itself says (memoised with it: it depends on nothing else)."""
    return CertificateFacts(fingerprint_sha256=leaf.fingerprint, subject=leaf.subject, san=leaf.dns + leaf.ips)


def certificate_facts(observation: Observation, config: CertmonConfig) -> CertificateFacts:
    """What certificate rules can match: the leaf's fingerprint, subject and SANs, and the target's tags."""
    tags = _tags_by_target(Identity(config)).get(observation.target.key, ())
    leaf = parse_leaf(observation.chain[0]) if observation.chain else None
    if leaf is None:
        return CertificateFacts(tags=tags)
    facts = leaf.derived(_rule_facts)
    return replace(facts, tags=tags) if tags else facts


@dataclass(frozen=True)
class _Resolution:
    """What the config says about one target, certificate and address."""

    policy: Policy
    server: str | None
    owner: str | None


#: What a resolution depends on besides the config: the target's server, owner and (with an owner) key, the
#: indexes of the certificate rules that match, and the address.
_ResolutionKey = tuple[Identity[CertmonConfig], str | None, str | None, str | None, tuple[int, ...], str | None]
_RESOLVED: BoundedMemo[_ResolutionKey, _Resolution] = BoundedMemo(RESOLUTION_CACHE_SIZE)


def _resolve(config: CertmonConfig, target: Target, facts: CertificateFacts, address: str | None) -> _Resolution:
    """Policy, server and first owner, memoised on what they depend on (the policy is only read, never changed):
    a bulk check of thousands of files, each its own target and certificate, resolves once, not once per file."""
    matched = tuple(index for index, _ in matching_rules(config, facts))
    named = target.key if target.owner is not None else None  # the key only names an owner's rule
    key = (Identity(config), target.server, target.owner, named, matched, address)
    found = _RESOLVED.get(key, None)
    if found is None:
        policy = resolve_policy(config, target, facts, address=address)
        # Who owns it is the config's answer (as for policy); the alarmer decides whom to tell, the reporter shows it.
        owners = resolve_owners(config, target, facts, address=address)
        server = server_for(config, target, address)
        found = _RESOLVED.put(key, _Resolution(policy=policy, server=server, owner=owners[0].name if owners else None))
    return found


def evaluate_observation(
    observation: Observation,
    *,
    config: CertmonConfig,
    trust: TrustStore,
    now: datetime,
    finder: IntermediateFinder | None = None,
) -> Evaluation:
    """Resolve the policy (defaults, owner, server, certificate rules) for this observation and evaluate it at
    `now`; with a `finder`, intermediates the server did not send are looked up first (cache, then AIA)."""
    facts = certificate_facts(observation, config)
    resolved = _resolve(config, observation.target, facts, observation.address)
    extra = finder.candidates(observation.chain, trust) if finder is not None else ()
    evaluation = evaluate(
        observation,
        now=now,
        policy=resolved.policy,
        trust=trust,
        server=resolved.server,
        extra_intermediates=extra,
    )
    return evaluation if resolved.owner is None else evaluation.model_copy(update={"owner": resolved.owner})
