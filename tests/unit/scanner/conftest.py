"""Fixtures shared by the scanner's unit tests."""

import pytest

from tests.support.pki import Issued, make_ca, make_leaf


@pytest.fixture(scope="module")
def chain() -> tuple[Issued, Issued]:
    """A leaf and its issuing CA."""
    ca = make_ca()
    return make_leaf(ca), ca
