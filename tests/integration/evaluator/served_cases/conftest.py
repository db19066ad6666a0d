"""The zoo, generated once per session: its CAs, one served chain per case, and the trust store of two roots."""

from pathlib import Path

import pytest

from services.evaluator.domain import TrustStore
from tests.integration.evaluator.served_cases.cases import Pki, Served, build_pki, write_cases


@pytest.fixture(scope="session")
def zoo_pki() -> Pki:
    """The zoo's certificate authorities."""
    return build_pki()


@pytest.fixture(scope="session")
def zoo_dir(zoo_pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with `<case>.pem`/`<case>.key` per case and `anchors.pem` (the two trusted roots)."""
    return tmp_path_factory.mktemp("zoo")


@pytest.fixture(scope="session")
def zoo(zoo_pki: Pki, zoo_dir: Path) -> dict[str, Served]:
    """Every case's served chain, by case name."""
    return write_cases(zoo_pki, zoo_dir)


@pytest.fixture(scope="session")
def zoo_trust(zoo_pki: Pki) -> TrustStore:
    """Root and root 2 only: the rogue root and root 1 of the cross-signed path are not trusted."""
    return TrustStore(anchors=tuple(a.cert for a in zoo_pki.anchors), description="zoo anchors")
