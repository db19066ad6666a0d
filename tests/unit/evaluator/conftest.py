"""A small PKI shared by the evaluator's unit tests: a trusted root and intermediate, and a rogue root."""

import pytest

from services.evaluator.domain import EvaluatorCaches, TrustStore
from tests.support.pki import Issued, make_ca, make_leaf, rsa_key
from tests.unit.evaluator.evaluator_support import CountingVerifier, store


@pytest.fixture(scope="session")
def root() -> Issued:
    """The root the trust store holds."""
    return make_ca("certmon Test Root")


@pytest.fixture(scope="session")
def intermediate(root: Issued) -> Issued:
    """An intermediate issued by the trusted root."""
    return make_ca("certmon Test Intermediate", issuer=root)


@pytest.fixture(scope="session")
def rsa_intermediate(root: Issued) -> Issued:
    """An RSA intermediate, for the signatures `cryptography` will only make by hand (SHA-1, MD5)."""
    return make_ca("certmon RSA Intermediate", issuer=root, key=rsa_key(2048))


@pytest.fixture(scope="session")
def rogue_root() -> Issued:
    """A root nobody trusts."""
    return make_ca("Rogue Root")


@pytest.fixture(scope="session")
def trust(root: Issued) -> TrustStore:
    """A trust store holding only the test root."""
    return store(root)


@pytest.fixture(scope="session")
def leaf(intermediate: Issued) -> Issued:
    """A healthy leaf for `localhost`, issued by the intermediate, valid 200 more days."""
    return make_leaf(intermediate, ("localhost", "www.localhost"))


@pytest.fixture
def counted() -> CountingVerifier:
    """The real verifier, counting its questions."""
    return CountingVerifier()


@pytest.fixture
def caches(counted: CountingVerifier) -> EvaluatorCaches:
    """This test's caches, starting empty, asking `counted`."""
    return EvaluatorCaches(verifier=counted)
