"""Certificates for the probe tests' servers: RSA (for RSA key-exchange suites) and ECDSA, under one root."""

from pathlib import Path

import pytest

from tests.support.pki import Issued, make_ca, make_leaf, rsa_key, write_chain


@pytest.fixture(scope="module")
def root() -> Issued:
    """A test root CA."""
    return make_ca()


@pytest.fixture(scope="module")
def rsa_leaf(root: Issued) -> Issued:
    """An RSA-2048 leaf for localhost, so RSA key-exchange suites can be served."""
    return make_leaf(root, ["localhost", "127.0.0.1"], key=rsa_key())


@pytest.fixture(scope="module")
def rsa_files(tmp_path_factory: pytest.TempPathFactory, rsa_leaf: Issued, root: Issued) -> tuple[Path, Path]:
    """The RSA leaf's chain and key files."""
    return write_chain(tmp_path_factory.mktemp("rsa"), "rsa", rsa_leaf, root)
