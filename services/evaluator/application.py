"""Evaluating one observation under a `certmon.yaml`: resolve the policy for its certificate, then judge it.

The handler uses this for every consumed observation, and `certmon check` calls it directly, in-process.
"""

from datetime import datetime

from services.evaluator.completion import IntermediateFinder
from services.evaluator.domain import TrustStore, evaluate, parse_chain
from shared.config import CertificateFacts, CertmonConfig, resolve_owners, resolve_policy, server_for
from shared.events.evaluation import Evaluation
from shared.events.observation import Observation


def certificate_facts(observation: Observation, config: CertmonConfig) -> CertificateFacts:
    """What certificate rules can match: the leaf's fingerprint, subject and SANs, and the target's tags."""
    tags = tuple(
        tag
        for entry in config.targets
        if entry.to_target(config.defaults).key == observation.target.key
        for tag in entry.tags
    )
    certs, _ = parse_chain(observation.chain[:1])
    if not certs:
        return CertificateFacts(tags=tags)
    leaf = certs[0]
    return CertificateFacts(
        fingerprint_sha256=leaf.fingerprint,
        subject=leaf.subject,
        san=tuple(leaf.dns_names() + leaf.ip_addresses()),
        tags=tags,
    )


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
    policy = resolve_policy(config, observation.target, facts, address=observation.address)
    server = server_for(config, observation.target, observation.address)
    extra = finder.candidates(observation.chain, trust) if finder is not None else ()
    evaluation = evaluate(observation, now=now, policy=policy, trust=trust, server=server, extra_intermediates=extra)
    # Who owns it is the config's answer (as for policy); the alarmer decides whom to tell, the reporter shows it.
    owners = resolve_owners(config, observation.target, facts, address=observation.address)
    return evaluation.model_copy(update={"owner": owners[0].name}) if owners else evaluation
