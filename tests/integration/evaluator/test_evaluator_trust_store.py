"""Loading the trust store from certifi's bundle and the user's CA files."""

from pathlib import Path

import pytest

from services.evaluator.adapters.trust import TrustStoreError, load_trust_store
from tests.support.pki import make_ca


def test_default_store_is_the_mozilla_bundle_plus_ca_files(tmp_path: Path) -> None:
    """`replace_default: false` keeps certifi's roots and adds the user's."""
    internal = make_ca("Internal Root")
    bundle = tmp_path / "internal.pem"
    bundle.write_bytes(internal.pem)
    default = load_trust_store([], replace_default=False)
    extended = load_trust_store([bundle], replace_default=False)
    assert len(default) > 100
    assert len(extended) == len(default) + 1
    assert internal.cert in extended.anchors
    assert load_trust_store([bundle], replace_default=False) is extended  # cached


def test_replace_default_trusts_only_the_ca_files(tmp_path: Path) -> None:
    """`replace_default: true` with a two-certificate bundle holds exactly those two anchors."""
    first, second = make_ca("Internal Root A"), make_ca("Internal Root B")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(first.pem + second.pem)
    store = load_trust_store([bundle], replace_default=True)
    assert store.anchors == (first.cert, second.cert)
    assert store.issuers_named(first.cert.subject) == (first.cert,)


def test_unreadable_or_empty_ca_files_are_errors(tmp_path: Path) -> None:
    """A missing file, a file with no PEM certificate, or an empty result raise TrustStoreError naming it."""
    with pytest.raises(TrustStoreError, match=r"missing\.pem"):
        load_trust_store([tmp_path / "missing.pem"], replace_default=True)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(TrustStoreError, match=r"junk\.pem"):
        load_trust_store([junk], replace_default=True)
    with pytest.raises(TrustStoreError, match="empty"):
        load_trust_store([], replace_default=True)
