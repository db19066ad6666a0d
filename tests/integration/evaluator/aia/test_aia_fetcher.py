"""The AIA adapter against a real HTTP server on 127.0.0.1: fetched, bounded, policed and cached."""

import time

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from services.evaluator import evaluate_observation
from services.evaluator.adapters.aia import AiaFetcher, aia_policy
from services.evaluator.domain import TrustStore
from services.evaluator.ports import AiaError
from services.evaluator.service_layer.intermediate_finder import IntermediateFinder
from shared.config import parse_config
from shared.config.schema import Scanning
from tests.integration.evaluator.aia.conftest import AiaServer
from tests.support.pki import NOW, make_ca
from tests.unit.evaluator.crafted_certificates import build_leaf
from tests.unit.evaluator.evaluator_support import b64, observation

LOCAL = aia_policy(Scanning(allow=["127.0.0.1/32"]))


def test_fetches_der_pem_and_pkcs7(aia_server: AiaServer) -> None:
    """A DER certificate, a PEM one and a PKCS#7 bundle all yield the certificate."""
    ca = make_ca("AIA Format CA")
    aia_server.bodies.update(
        {"/c.der": ca.der, "/c.pem": ca.pem, "/c.p7c": pkcs7.serialize_certificates([ca.cert], Encoding.DER)}
    )
    fetcher = AiaFetcher(policy=LOCAL, timeout=2)
    for path in ("/c.der", "/c.pem", "/c.p7c"):
        assert fetcher.fetch(aia_server.url(path)) == (ca.cert,)


def test_loopback_is_refused_by_the_default_policy(aia_server: AiaServer) -> None:
    """Without an explicit allow, a URL on 127.0.0.1 is never fetched."""
    aia_server.bodies["/c.der"] = make_ca("AIA Denied CA").der
    with pytest.raises(AiaError, match="address policy forbids"):
        AiaFetcher(timeout=2).fetch(aia_server.url("/c.der"))
    assert aia_server.hits == {}


def test_metadata_and_link_local_are_refused_before_connecting() -> None:
    """A name resolving to the cloud metadata address is refused without a connection."""
    fetcher = AiaFetcher(resolver=lambda host, port: ["169.254.169.254"])
    with pytest.raises(AiaError, match=r"169\.254\.169\.254"):
        fetcher.fetch("http://ca.example/issuer.der")


@pytest.mark.parametrize("url", ["ldap://ca.example/cn=CA", "file:///etc/passwd", "ftp://ca.example/ca.der"])
def test_only_http_and_https_are_fetched(url: str) -> None:
    """Other schemes are refused by name."""
    with pytest.raises(AiaError, match="not an http"):
        AiaFetcher(policy=LOCAL).fetch(url)


def test_a_server_that_stalls_times_out(aia_server: AiaServer) -> None:
    """A server that accepts and never answers costs one timeout, then is remembered as failed."""
    fetcher = AiaFetcher(policy=LOCAL, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(AiaError, match=r"timed out|took longer"):
        fetcher.fetch(aia_server.url("/stall"))
    assert time.monotonic() - started < 2
    with pytest.raises(AiaError):
        fetcher.fetch(aia_server.url("/stall"))  # from the cache: no second stall
    assert aia_server.hits["/stall"] == 1


def test_an_oversized_response_is_refused(aia_server: AiaServer) -> None:
    """A body over the cap is refused, announced or not."""
    aia_server.bodies["/big"] = aia_server.bodies["/stream-big"] = b"\x30" * 200_000
    fetcher = AiaFetcher(policy=LOCAL, timeout=2, max_bytes=64 * 1024)
    for path in ("/big", "/stream-big"):
        with pytest.raises(AiaError, match="cap"):
            fetcher.fetch(aia_server.url(path))


def test_not_found_and_not_a_certificate_are_errors(aia_server: AiaServer) -> None:
    """HTTP 404 and a body that is no certificate are both AiaError."""
    aia_server.bodies["/junk"] = b"<html>hello</html>"
    fetcher = AiaFetcher(policy=LOCAL, timeout=2)
    with pytest.raises(AiaError, match="404"):
        fetcher.fetch(aia_server.url("/missing"))
    with pytest.raises(AiaError, match="not a certificate"):
        fetcher.fetch(aia_server.url("/junk"))


def test_fetches_are_cached_by_url_until_the_ttl(aia_server: AiaServer) -> None:
    """A second fetch within the TTL does not reach the server; after it, it does."""
    aia_server.bodies["/c.der"] = make_ca("AIA Cached CA").der
    now = [1000.0]
    fetcher = AiaFetcher(policy=LOCAL, timeout=2, ttl=60, clock=lambda: now[0])
    fetcher.fetch(aia_server.url("/c.der"))
    fetcher.fetch(aia_server.url("/c.der"))
    assert aia_server.hits["/c.der"] == 1
    now[0] += 61
    fetcher.fetch(aia_server.url("/c.der"))
    assert aia_server.hits["/c.der"] == 2


def test_finder_completes_from_the_leafs_aia_url(aia_server: AiaServer) -> None:
    """The leaf's caIssuers URL serves the missing intermediate: it is the candidate, named by its URL, and the
    evaluation says the chain was completed from AIA."""
    root = make_ca("AIA Root")
    intermediate = make_ca("AIA Intermediate", issuer=root)
    url = aia_server.url("/intermediate.der")
    aia_server.bodies["/intermediate.der"] = intermediate.der
    leaf = build_leaf(intermediate, aia_url=url)
    finder = IntermediateFinder(aia=AiaFetcher(policy=LOCAL, timeout=2))
    trust = TrustStore(anchors=(root.cert,))
    (found,) = finder.candidates([b64(leaf)], trust)
    assert (found.cert, found.origin) == (intermediate.cert, "aia")
    assert url in found.source
    evaluation = evaluate_observation(
        observation(leaf), config=parse_config({}), trust=trust, now=NOW, caches=finder.caches, finder=finder
    )
    chain = evaluation.chain
    assert (chain.trusted, chain.complete, chain.completed_from) == (True, False, "aia")
    assert any(f.code == "chain.incomplete" and url in f.message for f in evaluation.findings)
