"""Protocol versions, cipher suites, server preference and key-exchange groups of one endpoint, found by
elimination with hand-built hellos (testssl.sh's `run_allciphers` method, not sslyze's one handshake per suite).

Per version: offer every untested suite of the registry (bundles of at most 128, eliminated concurrently),
record the server's choice, remove it, repeat until the server refuses. The first hello of a bundle is the
version's detection. Then offer the found suites reversed: a server that still picks its favourite has its
own order (derived by elimination when the bundles did not already give it), one that picks our first
follows the client. Named groups are eliminated the same way (TLS 1.3 key shares, TLS <= 1.2 ECDHE curves).

Connections to one endpoint are bounded (`concurrency`) and counted; a connection that fails (timeout,
reset before any answer, not TLS) ends that line of questioning and marks the enumeration incomplete.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from services.scanner.domain.limits import ProbeLimits
from services.scanner.domain.tls_names import OPENSSL_TO_IANA
from services.scanner.probes.enumeration.connection import Endpoint, Failure, exchange
from services.scanner.probes.enumeration.groups import ECDHE_GROUPS, TLS13_GROUPS, dh_group_name, group_bits, group_name
from services.scanner.probes.enumeration.hello import (
    MAX_SUITES_PER_HELLO,
    SSL2,
    SSL3,
    TLS10,
    TLS11,
    TLS12,
    TLS13,
    VERSION_NAMES,
    client_hello,
    sslv2_client_hello,
)
from services.scanner.probes.enumeration.iana import BY_CODE, BY_NAME, SUITES, Suite
from services.scanner.probes.enumeration.reply import Reply, ServerFlight, Sslv2Hello
from shared.events import CipherSuiteFacts, NegotiatedTls

log = structlog.get_logger(__name__)

#: Simultaneous connections to one endpoint during an enumeration.
DEFAULT_CONCURRENCY = 6

_LEGACY_VERSIONS = (SSL3, TLS10, TLS11, TLS12)


def _offer_order(suites: Sequence[Suite]) -> list[int]:
    """Suites OpenSSL implements first (in its own order), then the rest by code.

    Most servers then have every suite in the first bundle, whose elimination order is already their
    preference order; the other bundles cost one refused hello each.
    """
    known = {BY_NAME[name].code: rank for rank, name in enumerate(OPENSSL_TO_IANA.values()) if name in BY_NAME}
    return [suite.code for suite in sorted(suites, key=lambda s: (known.get(s.code, len(known)), s.code))]


def candidates(version: int) -> list[int]:
    """Every registry suite a hello of `version` can offer, in offer order."""
    if version == SSL2:
        return [suite.code for suite in SUITES if suite.versions == "ssl2"]
    if version == TLS13:
        return [suite.code for suite in SUITES if suite.versions == "tls13"]
    usable = ("legacy", "tls12") if version == TLS12 else ("legacy",)
    return _offer_order([suite for suite in SUITES if suite.versions in usable])


def _bundles(codes: list[int]) -> list[list[int]]:
    return [codes[i : i + MAX_SUITES_PER_HELLO] for i in range(0, len(codes), MAX_SUITES_PER_HELLO)]


@dataclass
class Enumeration:
    """Everything one enumeration learned; `complete` is False when a connection failed or time ran out."""

    versions: list[str] = field(default_factory=list)
    cipher_suites: dict[str, list[str]] = field(default_factory=dict)
    suites: list[CipherSuiteFacts] = field(default_factory=list)
    server_preference: dict[str, bool | None] = field(default_factory=dict)
    key_exchange_groups: list[str] = field(default_factory=list)
    connections: int = 0
    complete: bool = True
    chain: list[bytes] = field(default_factory=list)  # from the best TLS <= 1.2 (or SSLv2) plaintext Certificate
    ocsp_seen: bool = False  # a TLS <= 1.2 flight was read, so a stapled response would have been seen
    ocsp: bytes | None = None
    negotiated: NegotiatedTls | None = None  # the best version's favourite suite


class _Scan:
    """One endpoint's enumeration: the connection budget and what has been found so far."""

    def __init__(self, endpoint: Endpoint, limits: ProbeLimits, concurrency: int) -> None:
        self.endpoint, self.limits = endpoint, limits
        self._slots = asyncio.Semaphore(concurrency)
        self.connections = 0
        self.complete = True
        self.found: dict[int, dict[int, list[ServerFlight]]] = {}  # version → bundle → flights in found order
        self.order: dict[int, list[int]] = {}
        self.preference: dict[int, bool | None] = {}
        self.groups: dict[str, list[int]] = {"tls13": [], "ecdhe": []}
        self.sslv2: Sslv2Hello | None = None

    async def _ask(self, hello: bytes, *, sslv2: bool = False, until_hello: bool = False) -> Reply | Failure:
        async with self._slots:
            self.connections += 1
            reply = await exchange(self.endpoint, hello, limits=self.limits, sslv2=sslv2, until_hello=until_hello)
        if isinstance(reply, Failure):
            self.complete = False
            log.info("probe_failed", address=self.endpoint.address, kind=reply.kind, message=reply.message)
        return reply

    async def pick(
        self, version: int, suites: Sequence[int], *, groups: Sequence[int] | None = None, until_hello: bool = False
    ) -> ServerFlight | None:
        """The server's choice among `suites` at exactly `version`, or None when it declines."""
        hello = client_hello(version, suites, server_name=self.endpoint.server_name, groups=groups)
        reply = await self._ask(hello, until_hello=until_hello)
        if not isinstance(reply, ServerFlight):
            return None
        if reply.version != version or (reply.retry and version != TLS13):
            return None  # another version answered: this one is not supported
        if reply.cipher not in suites:
            log.info("probe_unoffered_suite", address=self.endpoint.address, cipher=f"{reply.cipher:#06x}")
            return None
        return reply

    async def eliminate(self, version: int, offer: Sequence[int], sink: list[ServerFlight]) -> None:
        """Offer, record the choice, remove it, repeat until the server declines; flights go to `sink`."""
        remaining = list(offer)
        while remaining:
            flight = await self.pick(version, remaining)
            if flight is None:
                return
            sink.append(flight)
            remaining.remove(flight.cipher)

    async def ranked(self, version: int, suites: Sequence[int]) -> list[int]:
        """The server's own order of `suites` (all known to be accepted), by elimination."""
        remaining, order = list(suites), []
        while len(remaining) > 1:
            flight = await self.pick(version, remaining, until_hello=True)
            if flight is None:
                break
            order.append(flight.cipher)
            remaining.remove(flight.cipher)
        return order + remaining

    async def sslv2_version(self) -> None:
        """SSLv2 in one hello: the SERVER-HELLO lists every kind the server shares with us."""
        reply = await self._ask(sslv2_client_hello(candidates(SSL2)), sslv2=True)
        if isinstance(reply, Sslv2Hello):
            self.sslv2 = reply

    async def tls_version(self, version: int) -> None:
        """Detection and suites of one version, then its preference order."""
        bundles = _bundles(candidates(version))
        found: dict[int, list[ServerFlight]] = {index: [] for index in range(len(bundles))}
        self.found[version] = found
        await asyncio.gather(*(self.eliminate(version, bundle, found[i]) for i, bundle in enumerate(bundles)))
        codes = [flight.cipher for index in sorted(found) for flight in found[index]]
        self.order[version] = codes
        if len(codes) < 2:
            self.preference[version] = None
            return
        reverse = await self.pick(version, codes[::-1], until_hello=True)
        if reverse is None:
            self.preference[version] = None
            return
        single_bundle = sum(1 for flights in found.values() if flights) == 1
        if single_bundle and reverse.cipher == codes[0]:
            self.preference[version] = True  # the bundle's elimination order is the server's order
            return
        if reverse.cipher == codes[-1]:
            forward = codes[0] if single_bundle else await self._first(version, codes)
            if forward == codes[0]:
                self.preference[version] = False
                return
        self.preference[version] = True
        self.order[version] = await self.ranked(version, codes)

    async def _first(self, version: int, codes: list[int]) -> int | None:
        flight = await self.pick(version, codes, until_hello=True)
        return flight.cipher if flight else None

    async def tls13_groups(self) -> None:
        """Named groups TLS 1.3 accepts: offer all, record the key share (or retry request) group, remove."""
        suites = candidates(TLS13)
        remaining = list(TLS13_GROUPS)
        while remaining:
            flight = await self.pick(TLS13, suites, groups=remaining, until_hello=True)
            if flight is None or flight.group not in remaining:
                return
            self.groups["tls13"].append(flight.group)
            remaining.remove(flight.group)

    async def ecdhe_groups(self) -> None:
        """Curves the best TLS <= 1.2 version accepts for ECDHE, read from its ServerKeyExchange."""
        for version in (TLS12, TLS11, TLS10, SSL3):
            ecdhe = [code for code in self.order.get(version, []) if BY_CODE[code].kex.startswith("ECDHE")]
            if ecdhe:
                break
        else:
            return
        remaining = list(ECDHE_GROUPS)
        while remaining:
            flight = await self.pick(version, ecdhe[:MAX_SUITES_PER_HELLO], groups=remaining)
            if flight is None or flight.group not in remaining:
                return
            self.groups["ecdhe"].append(flight.group)
            remaining.remove(flight.group)

    async def run(self) -> None:
        """Every version at once (bounded by the connection slots), then the ECDHE curves."""
        await asyncio.gather(
            self.sslv2_version(),
            *(self.tls_version(version) for version in (*_LEGACY_VERSIONS, TLS13)),
            self.tls13_groups(),
        )
        await self.ecdhe_groups()


def _suite_facts(version: int, flight: ServerFlight) -> CipherSuiteFacts:
    suite = BY_CODE[flight.cipher]
    group: str | None = None
    bits: int | None = None
    if flight.dh_prime is not None:
        group, bits = dh_group_name(flight.dh_prime), flight.dh_bits
    elif flight.group is not None:
        group, bits = group_name(flight.group), group_bits(flight.group)
    return CipherSuiteFacts(
        version=VERSION_NAMES[version],
        name=suite.name,
        code=suite.code,
        forward_secrecy=suite.forward_secrecy,
        aead=suite.aead,
        key_exchange_group=group,
        key_exchange_bits=bits,
    )


def _result(scan: _Scan) -> Enumeration:
    result = Enumeration(connections=scan.connections, complete=scan.complete)
    if scan.sslv2 is not None:
        kinds = [kind for kind in scan.sslv2.kinds if kind in BY_CODE]
        result.versions.append("SSLv2")
        result.cipher_suites["SSLv2"] = [BY_CODE[kind].name for kind in kinds]
        result.suites += [_suite_facts(SSL2, ServerFlight(version=SSL2, cipher=kind)) for kind in kinds]
        result.server_preference["SSLv2"] = None
        result.chain = [scan.sslv2.certificate] if scan.sslv2.certificate else []
    for version in (*_LEGACY_VERSIONS, TLS13):
        flights = {flight.cipher: flight for bundle in scan.found.get(version, {}).values() for flight in bundle}
        order = [code for code in scan.order.get(version, list(flights)) if code in flights]
        if not order:
            continue
        name = VERSION_NAMES[version]
        result.versions.append(name)
        result.cipher_suites[name] = [BY_CODE[code].name for code in order]
        result.suites += [_suite_facts(version, flights[code]) for code in order]
        result.server_preference[name] = scan.preference.get(version)
        favourite = flights[order[0]]
        result.negotiated = NegotiatedTls(
            version=name,
            cipher_suite=BY_CODE[order[0]].name,
            key_exchange_group=_suite_facts(version, favourite).key_exchange_group,
        )
        if version != TLS13:
            result.chain = list(favourite.certificates) or result.chain
            result.ocsp_seen = True
            stapled = [flight.ocsp for flight in flights.values() if flight.ocsp]
            result.ocsp = stapled[0] if stapled else result.ocsp
    seen = dict.fromkeys(group_name(code) for code in (*scan.groups["tls13"], *scan.groups["ecdhe"]))
    result.key_exchange_groups = list(seen)
    return result


async def enumerate_endpoint(
    endpoint: Endpoint, *, limits: ProbeLimits, concurrency: int = DEFAULT_CONCURRENCY
) -> Enumeration:
    """Enumerate versions, suites, preference and groups within `limits.target_seconds`; never raises.

    When time runs out, what was found so far is returned with `complete=False`.
    """
    scan = _Scan(endpoint, limits, concurrency)
    started = asyncio.get_running_loop().time()
    try:
        async with asyncio.timeout(limits.target_seconds):
            await scan.run()
    except TimeoutError:
        scan.complete = False
    result = _result(scan)
    log.info(
        "endpoint_enumerated",
        address=endpoint.address,
        port=endpoint.port,
        versions=result.versions,
        suites=len(result.suites),
        connections=result.connections,
        complete=result.complete,
        duration_ms=round((asyncio.get_running_loop().time() - started) * 1000, 1),
    )
    return result
