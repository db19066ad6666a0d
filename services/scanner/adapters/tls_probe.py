"""Observe a TLS endpoint: resolve, check the address policy, connect, optional STARTTLS, handshake, and record
the chain exactly as the server presented it.

The server is treated as hostile: every phase has a timeout, the whole target has one more, STARTTLS banners
have a byte cap and the chain a length cap. Certificates are never verified here (the evaluator judges them),
so expired, self-signed and untrusted chains are captured like any other.

Network problems never raise; they become `Observation.error`:
- `dns`: the name does not resolve; `policy`: the resolved address is denied by the CIDR policy;
- `refused`: no TCP connection (refused, unreachable, reset while connecting);
- `timeout`: with `phase` dns, connect, starttls, handshake, or target (the whole-target budget ran out);
- `protocol`: the plaintext STARTTLS dialogue failed, or STARTTLS for that protocol is not implemented yet;
- `tls`: the TLS handshake failed — an alert, an unsupported version, a peer that closes mid-handshake, or
  a peer that answers the ClientHello with bytes that are not TLS at all ("garbage" is `tls`, because it
  is the TLS layer that rejects it; `protocol` is kept for the plaintext dialogue before TLS).
"""

import asyncio
import base64
import functools
import socket
import ssl
import warnings
from datetime import datetime
from typing import Any

import structlog

from services.scanner.adapters.probe_errors import ProbeFailure
from services.scanner.adapters.starttls import negotiate_starttls, require_supported
from services.scanner.domain import ProbeLimits, address_allowed, iana_cipher_name, is_ip_literal, tls_version_name
from shared.events import NegotiatedTls, Observation, Target, TlsFacts

log = structlog.get_logger(__name__)

_ENCODING_DER = 2  # _ssl.ENCODING_DER; the constant is not exported by the public ssl module


@functools.cache
def scan_context() -> ssl.SSLContext:
    """The client context of every probe: no verification, every cipher and protocol OpenSSL still has."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("ALL:@SECLEVEL=0")  # legacy servers must still be observable, not refused
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1 are deprecated; we must still see them
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    return ctx


def presented_chain(ssl_object: ssl.SSLObject) -> list[bytes]:
    """The DER certificates the peer sent, in its order (public API from Python 3.13, private before)."""
    public = getattr(ssl_object, "get_unverified_chain", None)
    if public is not None:
        return list(public() or [])
    private: Any = ssl_object._sslobj  # type: ignore[attr-defined]
    return [cert.public_bytes(_ENCODING_DER) for cert in private.get_unverified_chain() or []]


class _Probe:
    """One probe of one endpoint; remembers the address so a failed observation still reports it."""

    def __init__(self, target: Target, limits: ProbeLimits) -> None:
        self.target, self.limits = target, limits
        self.address: str | None = None

    async def run(self) -> tuple[list[bytes], NegotiatedTls]:
        """Resolve, connect, upgrade, handshake; returns the presented chain and the negotiated facts."""
        require_supported(self.target.protocol)
        self.address = await self._resolve()
        if not address_allowed(self.address, self.limits):
            raise ProbeFailure("policy", f"{self.address} is in a network the scan policy denies")
        reader, writer = await self._connect(self.address)
        try:
            await self._starttls(reader, writer)
            ssl_object = await self._handshake(writer)
            return presented_chain(ssl_object), self._negotiated(ssl_object)
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
                return await asyncio.open_connection(address, self.target.port, limit=self.limits.max_banner_bytes)
        except TimeoutError:
            raise ProbeFailure("timeout", f"connecting to {address} timed out", phase="connect") from None
        except OSError as exc:
            raise ProbeFailure("refused", f"cannot connect to {address}: {_reason(exc)}") from None

    async def _starttls(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self.limits.handshake_seconds):
                await negotiate_starttls(self.target.protocol, reader, writer, limits=self.limits)
        except TimeoutError:
            raise ProbeFailure("timeout", "the STARTTLS dialogue timed out", phase="starttls") from None
        except OSError as exc:
            raise ProbeFailure("protocol", f"connection lost during STARTTLS: {_reason(exc)}") from None

    async def _handshake(self, writer: asyncio.StreamWriter) -> ssl.SSLObject:
        name = self.target.server_name
        sni = None if name is None or is_ip_literal(name) else name
        try:
            async with asyncio.timeout(self.limits.handshake_seconds):
                # asyncio's own handshake timeout is set past ours so that ours, with its clear phase, fires.
                await writer.start_tls(
                    scan_context(), server_hostname=sni, ssl_handshake_timeout=self.limits.handshake_seconds + 5
                )
        except TimeoutError:
            raise ProbeFailure("timeout", "the TLS handshake timed out", phase="handshake") from None
        except ssl.SSLError as exc:
            raise ProbeFailure("tls", f"TLS handshake failed: {_reason(exc)}") from None
        except OSError as exc:
            raise ProbeFailure("tls", f"connection lost during the TLS handshake: {_reason(exc)}") from None
        ssl_object = writer.get_extra_info("ssl_object")
        if not isinstance(ssl_object, ssl.SSLObject):
            raise ProbeFailure("tls", "the TLS layer reported no session after the handshake")
        return ssl_object

    def _negotiated(self, ssl_object: ssl.SSLObject) -> NegotiatedTls:
        cipher = ssl_object.cipher()
        return NegotiatedTls(
            version=tls_version_name(ssl_object.version() or "unknown"),
            cipher_suite=iana_cipher_name(cipher[0]) if cipher else "unknown",
        )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return str(exc.strerror)
    return str(exc) or type(exc).__name__


async def observe_endpoint(target: Target, *, now: datetime, limits: ProbeLimits) -> Observation:
    """Observe what `target` presents in one TLS handshake; never raises for network or peer problems.

    The `full` profile captures the same facts as `expiry` for now: protocol and cipher enumeration needs
    hand-built ClientHellos (a later issue), and `TlsFacts.enumerated` stays False until it exists.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    probe = _Probe(target, limits)
    chain: list[bytes] = []
    negotiated: NegotiatedTls | None = None
    error = None
    try:
        async with asyncio.timeout(limits.target_seconds):
            chain, negotiated = await probe.run()
    except TimeoutError:
        error = ProbeFailure("timeout", f"no result within {limits.target_seconds:g}s", phase="target").error
    except ProbeFailure as failure:
        error = failure.error
    if len(chain) > limits.max_chain:
        # A long chain is the server's choice, not a failed scan: keep the head, which holds the leaf.
        log.warning("chain_truncated", target=target.key, presented=len(chain), kept=limits.max_chain)
        chain = chain[: limits.max_chain]
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
        chain=[base64.b64encode(der).decode("ascii") for der in chain],
        tls=TlsFacts(negotiated=negotiated, enumerated=False),
        address=probe.address,
        error=error,
        duration_ms=duration_ms,
    )
