"""Evaluating one observation under a `certmon.yaml`: resolve the policy for its certificate, then judge it.

The handler uses this for every consumed observation, and `certmon check` calls it directly, in-process.

What the config says about a target (its tags, server, owner and policy) is a pure function of the config, the
target, the certificate's facts and the address, so it is kept in the evaluator's caches: an estate asks the same
questions on every scan. The config is keyed by identity: `CertmonConfig` is frozen (a loaded config never
changes) but holds dicts and lists, so it has no hash of its own.
"""

from dataclasses import dataclass, replace
from datetime import datetime

from services.evaluator.domain import EvaluatorCaches, ParsedCert, TrustStore, evaluate
from services.evaluator.domain.caches import Resolution, ResolutionKey
from services.evaluator.domain.memo import Identity
from services.evaluator.domain.parse import parse_presented
from services.evaluator.service_layer.intermediate_finder import IntermediateFinder
from services.evaluator.service_layer.metrics import measured
from shared.config import CertificateFacts, CertmonConfig, TargetTags, resolve_owners, resolve_policy, server_for
from shared.config.resolve import matching_rules
from shared.events.evaluation import Evaluation
from shared.events.observation import Observation
from shared.events.target import Target


def _tags_by_target(config: CertmonConfig, caches: EvaluatorCaches) -> dict[str, tuple[str, ...]]:
    """Each configured target's key → its tags, in file order (a key listed twice gets both entries' tags); built
    once per config."""
    key = Identity(config)
    tags = caches.config_tags.get(key, None)
    if tags is None:
        tags = TargetTags.of(config).by_target
        caches.config_tags.put(key, tags)
    return tags


def _rule_facts(leaf: ParsedCert) -> CertificateFacts:
    """What certificate rules match on that the leaf itself says (memoised with it: it depends on nothing else)."""
    return CertificateFacts(fingerprint_sha256=leaf.fingerprint, subject=leaf.subject, san=leaf.dns + leaf.ips)


def certificate_facts(observation: Observation, config: CertmonConfig, caches: EvaluatorCaches) -> CertificateFacts:
    """What certificate rules can match: the leaf's fingerprint, subject and SANs, and the target's tags."""
    tags = _tags_by_target(config, caches).get(observation.target.key, ())
    leaf = parse_presented(observation.chain[0], caches) if observation.chain else None
    if leaf is None:
        return CertificateFacts(tags=tags)
    facts = leaf.derived(_rule_facts)
    return replace(facts, tags=tags) if tags else facts


def _resolve(
    config: CertmonConfig, target: Target, facts: CertificateFacts, address: str | None, caches: EvaluatorCaches
) -> Resolution:
    """Policy, server and first owner, kept by what they depend on (the policy is only read, never changed): a
    bulk check of thousands of files, each its own target and certificate, resolves once, not once per file."""
    matched = tuple(index for index, _ in matching_rules(config, facts))
    named = target.key if target.owner is not None else None  # the key only names an owner's rule
    key: ResolutionKey = (Identity(config), target.server, target.owner, named, matched, address)
    found = caches.resolutions.get(key, None)
    if found is None:
        policy = resolve_policy(config, target, facts, address=address)
        # Who owns it is the config's answer (as for policy); the alarmer decides whom to tell, the reporter shows it.
        owners = resolve_owners(config, target, facts, address=address)
        server = server_for(config, target, address)
        owner = owners[0].name if owners else None
        found = caches.resolutions.put(key, Resolution(policy=policy, server=server, owner=owner))
    return found


def evaluate_observation(
    observation: Observation,
    *,
    config: CertmonConfig,
    trust: TrustStore,
    now: datetime,
    caches: EvaluatorCaches,
    finder: IntermediateFinder | None = None,
) -> Evaluation:
    """Resolve the policy (defaults, owner, server, certificate rules) for this observation and evaluate it at
    `now`; with a `finder`, intermediates the server did not send are looked up first (cache, then AIA).

    `caches` are the process's memos, which the composition root builds once; they change only the speed, never
    the answer."""
    facts = certificate_facts(observation, config, caches)
    resolved = _resolve(config, observation.target, facts, observation.address, caches)
    extra = finder.candidates(observation.chain, trust) if finder is not None else ()
    evaluation = evaluate(
        observation,
        now=now,
        policy=resolved.policy,
        trust=trust,
        caches=caches,
        server=resolved.server,
        extra_intermediates=extra,
    )
    return evaluation if resolved.owner is None else evaluation.model_copy(update={"owner": resolved.owner})


@dataclass(frozen=True)
class Evaluator:
    """Evaluates observations with one process's configuration, trust store, caches and intermediate finder;
    built by the evaluator's bootstrap for its handler and for `certmon check` alike."""

    config: CertmonConfig
    trust: TrustStore
    caches: EvaluatorCaches
    finder: IntermediateFinder | None = None

    def evaluate(self, observation: Observation, *, now: datetime) -> Evaluation:
        """`evaluate_observation` with this process's parts, counted and timed (`certmon_evaluations_total`,
        `certmon_evaluation_duration_seconds`)."""
        return measured(
            lambda: evaluate_observation(
                observation, config=self.config, trust=self.trust, now=now, caches=self.caches, finder=self.finder
            )
        )
