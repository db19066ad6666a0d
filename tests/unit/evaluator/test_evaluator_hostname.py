"""Hostname matching (RFC 6125): wildcards in the left-most label only, IP addresses, IDNA, CN only without SAN."""

import pytest

from services.evaluator.domain import EvaluatorCaches
from services.evaluator.domain.hostname import check_hostname, dns_name_matches
from tests.support.pki import Issued, make_leaf
from tests.unit.evaluator.evaluator_support import parsed_cert


@pytest.mark.parametrize(
    ("pattern", "hostname", "matches"),
    [
        ("www.example.com", "www.example.com", True),
        ("www.example.com", "WWW.Example.COM.", True),
        ("*.example.com", "www.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.b.example.com", False),
        ("*.EXAMPLE.com", "api.example.com", True),
        ("w*.example.com", "www.example.com", False),
        ("*w.example.com", "www.example.com", False),
        ("www.*.example.com", "www.api.example.com", False),
        ("*.*.example.com", "a.b.example.com", False),
        ("*.com", "example.com", False),
        ("*", "localhost", False),
        ("xn--bcher-kva.example", "bücher.example", True),
        ("*.xn--bcher-kva.example", "shop.bücher.example", True),
        ("bücher.example", "xn--bcher-kva.example", True),
        ("other.example.com", "www.example.com", False),
    ],
)
def test_dns_name_matching(pattern: str, hostname: str, matches: bool) -> None:
    """A SAN pattern matches a hostname only under RFC 6125's rules."""
    assert dns_name_matches(pattern, hostname) is matches


def test_wildcard_leaf_names_a_subdomain_but_not_the_apex(intermediate: Issued) -> None:
    """`*.shop.example` covers `www.shop.example` and not `shop.example`, which is a critical mismatch."""
    leaf = parsed_cert(make_leaf(intermediate, ("*.shop.example",)))
    assert check_hostname(leaf, "www.shop.example", EvaluatorCaches()) is None
    mismatch = check_hostname(leaf, "shop.example", EvaluatorCaches())
    assert mismatch is not None
    assert (mismatch.code, mismatch.severity) == ("hostname.mismatch", "critical")
    assert "*.shop.example" in mismatch.message


def test_ip_address_matches_only_an_ip_san(intermediate: Issued) -> None:
    """An IP target is matched against IP SANs, not against a DNS SAN spelling the same address."""
    by_ip = parsed_cert(make_leaf(intermediate, ("127.0.0.1", "::1")))
    assert check_hostname(by_ip, "127.0.0.1", EvaluatorCaches()) is None
    assert check_hostname(by_ip, "[::1]", EvaluatorCaches()) is None
    by_dns = parsed_cert(make_leaf(intermediate, ("localhost",)))
    mismatch = check_hostname(by_dns, "127.0.0.1", EvaluatorCaches())
    assert mismatch is not None and mismatch.code == "hostname.mismatch"


def test_common_name_is_used_only_without_san_and_reported(intermediate: Issued) -> None:
    """With no SAN extension a matching CN is a warning that says so; with a SAN the CN is ignored."""
    cn_only = parsed_cert(make_leaf(intermediate, ("legacy.example",), san=False))
    found = check_hostname(cn_only, "legacy.example", EvaluatorCaches())
    assert found is not None
    assert (found.code, found.severity) == ("hostname.cn_only", "warning")
    assert "e_ext_san_missing" in found.message
    with_san = parsed_cert(make_leaf(intermediate, ("other.example",), cn="legacy.example"))
    mismatch = check_hostname(with_san, "legacy.example", EvaluatorCaches())
    assert mismatch is not None and mismatch.code == "hostname.mismatch"


def test_cn_only_mismatch_names_the_cn(intermediate: Issued) -> None:
    """A leaf without SAN whose CN does not match is a mismatch whose message gives the CN."""
    cn_only = parsed_cert(make_leaf(intermediate, ("legacy.example",), san=False))
    mismatch = check_hostname(cn_only, "new.example", EvaluatorCaches())
    assert mismatch is not None
    assert mismatch.code == "hostname.mismatch"
    assert "legacy.example" in mismatch.message
