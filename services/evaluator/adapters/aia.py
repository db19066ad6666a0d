"""Fetching an issuer certificate from an AIA caIssuers URL: bounded, policed and cached.

Bounded: one deadline for the whole fetch (connect, redirects, body), and a cap on the body's size. Policed:
http and https only, and the host must resolve only to addresses the `AddressPolicy` permits (no loopback,
link-local or cloud metadata address unless allowed), checked on the address actually connected to, so a
certificate cannot point certmon at an internal service. Cached per URL for a TTL, failures too (for less),
so a dead URL costs one timeout per TTL rather than one per evaluation.

Errors: `AiaError` for every way a fetch fails (policy, network, HTTP status, size, content).
"""

import http.client
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from ipaddress import ip_address
from urllib.parse import urljoin, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7

from services.evaluator.ports import AiaError
from shared.address_policy import AddressPolicy, networks
from shared.config.schema import Scanning

#: AIA URLs come from the certificate a server presents, so whatever `scanning.deny` says they are never fetched
#: from loopback, unspecified, link-local, multicast or cloud metadata addresses, unless `scanning.allow` says so.
AIA_DENY = networks(
    (
        *("127.0.0.0/8", "::1/128", "0.0.0.0/8", "::/128", "169.254.0.0/16", "fe80::/10"),
        *("224.0.0.0/4", "ff00::/8", "100.100.100.200/32", "fd00:ec2::254/128"),
    )
)


def aia_policy(scanning: Scanning | None = None) -> AddressPolicy:
    """The address policy of AIA fetches: `scanning:`'s deny and allow lists (the defaults without one), plus
    `AIA_DENY`."""
    configured = AddressPolicy.from_scanning(scanning or Scanning())
    return AddressPolicy(deny=AIA_DENY + configured.deny, allow=configured.allow)


_REDIRECTS = {301, 302, 303, 307, 308}
_CHUNK = 16 * 1024


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to an address already checked, whatever the host name resolves to now."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """An HTTPS connection to an address already checked, verifying the certificate for the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address, self._tls = address, context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


def certificates_in(body: bytes) -> tuple[x509.Certificate, ...]:
    """The certificates in a caIssuers response: DER, PEM, or a PKCS#7 bundle (DER or PEM)."""
    loaders: list[Callable[[bytes], list[x509.Certificate]]] = [
        lambda b: [x509.load_der_x509_certificate(b)],
        pkcs7.load_der_pkcs7_certificates,
        x509.load_pem_x509_certificates,
        pkcs7.load_pem_pkcs7_certificates,
    ]
    for load in loaders:
        try:
            certs = load(body)
        except ValueError:
            continue
        if certs:
            return tuple(certs)
    raise AiaError("the response is not a certificate (DER, PEM or PKCS#7)")


Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise AiaError(f"{host} does not resolve ({exc})") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class AiaFetcher:
    """Fetches caIssuers URLs within a deadline and a size cap, under an address policy, with a TTL cache.

    Thread-safe: evaluations run in worker threads and share one fetcher.
    """

    def __init__(
        self,
        *,
        policy: AddressPolicy | None = None,
        timeout: float = 5.0,
        max_bytes: int = 64 * 1024,
        ttl: float = 3600.0,
        failure_ttl: float = 300.0,
        max_entries: int = 1024,
        max_redirects: int = 3,
        clock: Callable[[], float] = time.monotonic,
        resolver: Resolver = resolve,
    ) -> None:
        self.policy = policy or aia_policy()
        self.timeout, self.max_bytes, self.max_redirects = timeout, max_bytes, max_redirects
        self._ttl, self._failure_ttl, self._max_entries = ttl, failure_ttl, max_entries
        self._clock, self._resolve = clock, resolver
        self._cache: OrderedDict[str, tuple[float, tuple[x509.Certificate, ...] | AiaError]] = OrderedDict()
        self._lock = threading.Lock()
        self._tls_context: ssl.SSLContext | None = None

    @property
    def _tls(self) -> ssl.SSLContext:
        """The context for https URLs, made on first use: loading the system's CA certificates takes 20 ms, and a
        `certmon check` of complete chains never fetches."""
        if self._tls_context is None:
            self._tls_context = ssl.create_default_context()
        return self._tls_context

    def fetch(self, url: str) -> tuple[x509.Certificate, ...]:
        """The certificates served at `url` (from the cache while fresh); raises `AiaError` (cached too)."""
        now = self._clock()
        with self._lock:
            hit = self._cache.get(url)
        if hit is not None and hit[0] > now:
            if isinstance(hit[1], AiaError):
                raise hit[1]
            return hit[1]
        try:
            result: tuple[x509.Certificate, ...] | AiaError = certificates_in(self._get(url))
        except AiaError as exc:
            result = exc
        self._remember(url, result, now)
        if isinstance(result, AiaError):
            raise result
        return result

    def _remember(self, url: str, result: tuple[x509.Certificate, ...] | AiaError, now: float) -> None:
        ttl = self._failure_ttl if isinstance(result, AiaError) else self._ttl
        with self._lock:
            self._cache[url] = (now + ttl, result)
            self._cache.move_to_end(url)
            while len(self._cache) > self._max_entries:
                self._cache.popitem(last=False)

    def _get(self, url: str) -> bytes:
        deadline = time.monotonic() + self.timeout
        for _ in range(self.max_redirects + 1):
            try:
                status, location, body = self._request(url, deadline)
            except (OSError, http.client.HTTPException) as exc:  # timeouts are OSError too
                raise AiaError(f"fetching {url} failed: {type(exc).__name__}: {exc}") from exc
            if status not in _REDIRECTS:
                if status != 200:
                    raise AiaError(f"{url} answered HTTP {status}")
                return body
            if location is None:
                raise AiaError(f"{url} redirects without a Location")
            url = urljoin(url, location)
        raise AiaError(f"more than {self.max_redirects} redirects")

    def _connection(self, url: str, deadline: float) -> tuple[http.client.HTTPConnection, str]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AiaError(f"{url} is not an http(s) URL")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise AiaError(f"{url} has a bad port") from exc
        addresses = self._resolve(parts.hostname, port)
        if not addresses:
            raise AiaError(f"{parts.hostname} does not resolve")
        for address in addresses:
            if not self.policy.permits(ip_address(address)):
                raise AiaError(f"{parts.hostname} resolves to {address}, which the address policy forbids")
        remaining = max(deadline - time.monotonic(), 0.001)
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = _PinnedHTTPS(parts.hostname, port, addresses[0], remaining, self._tls)
        else:
            conn = _PinnedHTTP(parts.hostname, port, addresses[0], remaining)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return conn, target

    def _request(self, url: str, deadline: float) -> tuple[int, str | None, bytes]:
        conn, target = self._connection(url, deadline)
        try:
            conn.request("GET", target, headers={"User-Agent": "certmon", "Accept": "application/pkix-cert, */*"})
            response = conn.getresponse()
            try:
                if response.status in _REDIRECTS:
                    return response.status, response.getheader("Location"), b""
                declared = response.getheader("Content-Length")
                if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
                    raise AiaError(f"{url} serves {declared} bytes, over the {self.max_bytes}-byte cap")
                return response.status, None, self._read(response, url, deadline, conn)
            finally:
                response.close()  # the response holds its own reference to the socket
        finally:
            conn.close()

    def _read(
        self, response: http.client.HTTPResponse, url: str, deadline: float, conn: http.client.HTTPConnection
    ) -> bytes:
        body = bytearray()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AiaError(f"fetching {url} took longer than {self.timeout} s")
            if conn.sock is not None:
                conn.sock.settimeout(remaining)
            chunk = response.read(_CHUNK)
            if not chunk:
                return bytes(body)
            body += chunk
            if len(body) > self.max_bytes:
                raise AiaError(f"{url} serves more than the {self.max_bytes}-byte cap")
