"""Observe a TLS endpoint: resolve, check the address policy, connect, optional STARTTLS, handshake, and record
the chain exactly as the server presented it, with its stapled OCSP response (and, when the target asks, the
chain presented to a client that sends no SNI).

The server is treated as hostile: every phase has a timeout, the whole target has one more, STARTTLS banners
and the TLS handshake have byte caps and the chain a length cap. The address policy is checked on the
resolved address, and that very address is what is connected to (no second lookup in between).

Network problems never raise; they become `Observation.error`:
- `dns`: the name does not resolve; `policy`: the resolved address is denied by the CIDR policy;
- `refused`: no TCP connection (refused, unreachable, reset while connecting);
- `timeout`: with `phase` dns, connect, starttls, handshake, or target (the whole-target budget ran out);
- `protocol`: the plaintext STARTTLS dialogue failed (a refusal, a reply that is not the protocol, too many
  bytes before TLS);
- `tls`: the TLS handshake failed — an alert, an unsupported version, a peer that closes mid-handshake,
  more bytes than the handshake cap, or a peer that answers the ClientHello with bytes that are not TLS at all
  ("garbage" is `tls`, because it is the TLS layer that rejects it; `protocol` is kept for the plaintext
  dialogue before TLS).

A failed handshake without SNI after a successful one with SNI is not an error of the observation: it is a
fact about the server (it needs SNI), recorded as an empty `chain_without_sni`.
"""

import asyncio
import base64
import socket
from datetime import datetime

import structlog

from services.scanner.domain.limits import ProbeLimits, address_allowed
from services.scanner.domain.tls_names import is_ip_literal
from services.scanner.probes.errors import ProbeFailure
from services.scanner.probes.handshake.client import HandshakeResult, handshake
from services.scanner.probes.starttls.negotiate import negotiate_starttls
from shared.events import Observation, ObservationError, Target, TlsFacts

log = structlog.get_logger(__name__)


def _b64(ders: list[bytes]) -> list[str]:
    return [base64.b64encode(der).decode("ascii") for der in ders]


class _Probe:
    """One probe of one endpoint; remembers the address and connection count for the observation."""

    def __init__(self, target: Target, limits: ProbeLimits) -> None:
        self.target, self.limits = target, limits
        self.address: str | None = None
        self.connections = 0

    @property
    def sni(self) -> str | None:
        """The name sent as SNI: the target's server name unless it is an IP literal (never sent as SNI)."""
        name = self.target.server_name
        return None if name is None or is_ip_literal(name) else name

    async def resolve(self) -> str:
        """Resolve the host once and check the policy on the address every connection will then use."""
        self.address = await self._resolve()
        if not address_allowed(self.address, self.limits):
            raise ProbeFailure("policy", f"{self.address} is in a network the scan policy denies")
        return self.address

    async def connect_and_handshake(self, address: str, sni: str | None) -> HandshakeResult:
        """Connect to `address`, run the STARTTLS dialogue if any, and complete one TLS handshake."""
        reader, writer = await self._connect(address)
        self.connections += 1
        try:
            await self._starttls(reader, writer)
            return await self._handshake(reader, writer, sni)
        finally:
            writer.transport.abort()  # a probe has nothing to say after the handshake; do not wait on the peer

    async def _resolve(self) -> str:
        host = (self.target.host or "").removeprefix("[").removesuffix("]")
        if not host:
            raise ProbeFailure("dns", "the target has no host to resolve")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.limits.connect_seconds):
                infos = await loop.getaddrinfo(host, self.target.port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise ProbeFailure("timeout", f"resolving {host} timed out", phase="dns") from None
        except (OSError, UnicodeError) as exc:
            raise ProbeFailure("dns", f"cannot resolve {host}: {_reason(exc)}") from None
        if not infos:
            raise ProbeFailure("dns", f"{host} resolves to no address")
        return str(infos[0][4][0])

    async def _connect(self, address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            async with asyncio.timeout(self.limits.connect_seconds):
                # AI_NUMERICHOST: the checked address is connected to as is, never looked up again.
                return await asyncio.open_connection(
                    address, self.target.port, limit=self.limits.max_banner_bytes, flags=socket.AI_NUMERICHOST
                )
        except TimeoutError:
            raise ProbeFailure("timeout", f"connecting to {address} timed out", phase="connect") from None
        except OSError as exc:
            raise ProbeFailure("refused", f"cannot connect to {address}: {_reason(exc)}") from None

    async def _starttls(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self.limits.handshake_seconds):
                await negotiate_starttls(
                    self.target.protocol, reader, writer, limits=self.limits, domain=self.target.server_name
                )
        except TimeoutError:
            raise ProbeFailure("timeout", "the STARTTLS dialogue timed out", phase="starttls") from None
        except OSError as exc:
            raise ProbeFailure("protocol", f"connection lost during STARTTLS: {_reason(exc)}") from None

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sni: str | None
    ) -> HandshakeResult:
        try:
            async with asyncio.timeout(self.limits.handshake_seconds):
                return await handshake(reader, writer, sni=sni, max_bytes=self.limits.max_handshake_bytes)
        except TimeoutError:
            raise ProbeFailure("timeout", "the TLS handshake timed out", phase="handshake") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return str(exc.strerror)
    return str(exc) or type(exc).__name__


async def _with_sni(probe: _Probe, deadline: float) -> tuple[HandshakeResult | None, ObservationError | None]:
    try:
        async with asyncio.timeout_at(deadline):
            address = await probe.resolve()
            return await probe.connect_and_handshake(address, probe.sni), None
    except TimeoutError:
        return None, ProbeFailure("timeout", f"no result within {probe.limits.target_seconds:g}s", phase="target").error
    except ProbeFailure as failure:
        return None, failure.error


async def _without_sni(probe: _Probe, first: HandshakeResult, deadline: float) -> list[bytes]:
    """The chain a client without SNI gets; empty when that handshake fails (the server needs SNI)."""
    if probe.sni is None or probe.address is None:  # the first handshake sent no SNI already
        return first.chain
    try:
        async with asyncio.timeout_at(deadline):
            return (await probe.connect_and_handshake(probe.address, None)).chain
    except TimeoutError:
        log.info("no_sni_handshake_failed", target=probe.target.key, reason="whole-target budget ran out")
    except ProbeFailure as failure:
        log.info("no_sni_handshake_failed", target=probe.target.key, reason=failure.error.message)
    return []


def _capped(target: Target, chain: list[bytes], limits: ProbeLimits) -> list[bytes]:
    if len(chain) > limits.max_chain:
        # A long chain is the server's choice, not a failed scan: keep the head, which holds the leaf.
        log.warning("chain_truncated", target=target.key, presented=len(chain), kept=limits.max_chain)
        return chain[: limits.max_chain]
    return chain


def _facts(probe: _Probe, result: HandshakeResult | None, without_sni: list[bytes] | None) -> TlsFacts:
    if result is None:
        return TlsFacts(connections=probe.connections)
    staple = result.ocsp_response
    return TlsFacts(
        negotiated=result.negotiated,
        enumerated=False,
        ocsp_stapled=staple is not None,
        ocsp_response=base64.b64encode(staple).decode("ascii") if staple is not None else None,
        connections=probe.connections,
        chain_without_sni=None if without_sni is None else _b64(_capped(probe.target, without_sni, probe.limits)),
    )


async def observe_endpoint(target: Target, *, now: datetime, limits: ProbeLimits) -> Observation:
    """Observe what `target` presents in one TLS handshake (two with `also_without_sni`); never raises for
    network or peer problems.

    Protocol and cipher-suite enumeration is not done here: `TlsFacts.enumerated` stays False.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + limits.target_seconds
    probe = _Probe(target, limits)
    result, error = await _with_sni(probe, deadline)
    without_sni = await _without_sni(probe, result, deadline) if result and target.also_without_sni else None
    chain = _capped(target, result.chain, limits) if result else []
    duration_ms = round((loop.time() - started) * 1000, 1)
    log.info(
        "endpoint_observed",
        target=target.key,
        address=probe.address,
        certificates=len(chain),
        error_kind=error.kind if error else None,
        duration_ms=duration_ms,
    )
    return Observation(
        target=target,
        observed_at=now,
        chain=_b64(chain),
        tls=_facts(probe, result, without_sni),
        address=probe.address,
        error=error,
        duration_ms=duration_ms,
    )
