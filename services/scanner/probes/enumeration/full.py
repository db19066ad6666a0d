"""The `full` profile: the `expiry` handshake's observation, completed by the enumeration of the same address."""

import asyncio
import base64

from services.scanner.domain.limits import ProbeLimits
from services.scanner.domain.tls_names import is_ip_literal
from services.scanner.probes.enumeration.connection import Endpoint
from services.scanner.probes.enumeration.enumerate import DEFAULT_CONCURRENCY, Enumeration, enumerate_endpoint
from shared.events import Observation, TlsFacts


def _b64(der: bytes) -> str:
    return base64.b64encode(der).decode("ascii")


def _worth_enumerating(observation: Observation) -> bool:
    """Enumerate when the address is known and the handshake either worked or only failed at TLS level.

    A `tls` failure may just mean that the local OpenSSL cannot speak the server's only protocol (SSLv3,
    SSLv2, export suites); hand-built hellos can. Refused, timed-out, denied or STARTTLS-broken targets
    would only fail again, one connection per probe.
    """
    if observation.address is None or observation.target.host is None:
        return False
    return observation.error is None or observation.error.kind == "tls"


def _merge(observation: Observation, found: Enumeration, limits: ProbeLimits, seconds: float) -> Observation:
    tls: TlsFacts = observation.tls
    updates: dict[str, object] = {
        "versions": found.versions,
        "cipher_suites": found.cipher_suites,
        "suites": found.suites,
        "server_preference": found.server_preference,
        "key_exchange_groups": found.key_exchange_groups,
        "connections": tls.connections + found.connections,
        "enumerated": found.complete,
        "negotiated": tls.negotiated or found.negotiated,
    }
    if tls.ocsp_stapled is None and found.ocsp_seen:
        updates["ocsp_stapled"] = found.ocsp is not None
        updates["ocsp_response"] = _b64(found.ocsp) if found.ocsp else None
    chain, error = observation.chain, observation.error
    if not chain and found.chain and found.versions:
        # OpenSSL could not shake hands, our own hellos could: the server is observable after all.
        chain, error = [_b64(der) for der in found.chain[: limits.max_chain]], None
    return observation.model_copy(
        update={
            "tls": tls.model_copy(update=updates),
            "chain": chain,
            "error": error,
            "duration_ms": round((observation.duration_ms or 0) + seconds * 1000, 1),
        }
    )


async def complete_full(
    observation: Observation, *, limits: ProbeLimits, concurrency: int = DEFAULT_CONCURRENCY
) -> Observation:
    """Add versions, suites, preference and groups to an endpoint observation; returns it unchanged when the
    endpoint cannot be enumerated. Never raises for peer behaviour.

    `TlsFacts.enumerated` is True only when every probe got a definite answer within `limits.target_seconds`.
    """
    if not _worth_enumerating(observation):
        return observation
    target = observation.target
    name = target.server_name
    endpoint = Endpoint(
        address=observation.address or "",
        port=target.port,
        server_name=None if name is None or is_ip_literal(name) else name,
        protocol=target.protocol,
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    found = await enumerate_endpoint(endpoint, limits=limits, concurrency=concurrency)
    return _merge(observation, found, limits, loop.time() - started)
