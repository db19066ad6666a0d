"""Certificate files beyond PEM and DER: password-less PKCS#12, and directories expanded into file targets."""

import datetime as dt
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, NoEncryption, pkcs12

from services.scanner.bootstrap import configured_targets
from services.scanner.probes.files.source import expand_file_targets, observe_directory, observe_file
from shared.config import parse_config
from shared.events import Target
from tests.support.pki import Issued

WHEN = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def _p12(leaf: Issued | None, ca: Issued, encryption: NoEncryption | BestAvailableEncryption) -> bytes:
    return pkcs12.serialize_key_and_certificates(
        b"certmon",
        leaf.key if leaf else None,  # type: ignore[arg-type]
        leaf.cert if leaf else None,
        [ca.cert],
        encryption,
    )


def _observe(path: Path) -> tuple[list[str], str | None]:
    obs = observe_file(Target(file=str(path)), now=WHEN)
    return obs.chain, obs.error.message if obs.error else None


def test_password_less_pkcs12_yields_its_certificate_then_the_others(
    tmp_path: Path, chain: tuple[Issued, Issued]
) -> None:
    """A PKCS#12 without a password gives its certificate first, then the bundled CA certificates."""
    leaf, ca = chain
    path = tmp_path / "server.p12"
    path.write_bytes(_p12(leaf, ca, NoEncryption()))
    assert _observe(path) == ([leaf.b64, ca.b64], None)


def test_password_protected_pkcs12_is_a_clear_file_error(tmp_path: Path, chain: tuple[Issued, Issued]) -> None:
    """A PKCS#12 with a password is a `file` error saying so (no password can be configured)."""
    path = tmp_path / "locked.p12"
    path.write_bytes(_p12(*chain, BestAvailableEncryption(b"s3cret")))
    obs = observe_file(Target(file=str(path)), now=WHEN)
    assert obs.chain == []
    assert obs.error is not None and obs.error.kind == "file"
    assert obs.error.message == (
        f"{path}: PKCS#12 is password-protected (or damaged); only password-less files are read"
    )


def test_pkcs12_holding_only_a_key_is_a_file_error(tmp_path: Path, chain: tuple[Issued, Issued]) -> None:
    """A PKCS#12 with a key but no certificate at all has nothing to observe."""
    leaf, _ = chain
    path = tmp_path / "key-only.p12"
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"k", leaf.key, None, None, NoEncryption()))  # type: ignore[arg-type]
    assert _observe(path) == ([], f"{path}: PKCS#12 file holds no certificate")


def test_der_certificate_is_not_mistaken_for_pkcs12(tmp_path: Path, chain: tuple[Issued, Issued]) -> None:
    """A DER certificate (SEQUENCE of SEQUENCE) still reads as one certificate."""
    path = tmp_path / "leaf.der"
    path.write_bytes(chain[0].der)
    assert _observe(path) == ([chain[0].b64], None)


@pytest.fixture
def directory(tmp_path: Path, chain: tuple[Issued, Issued]) -> Path:
    """A directory with certificate files of every extension, a non-certificate file and a sub-directory."""
    leaf, ca = chain
    folder = tmp_path / "certs"
    (folder / "nested").mkdir(parents=True)
    (folder / "b.pem").write_bytes(leaf.pem)
    (folder / "a.CRT").write_bytes(ca.pem)
    (folder / "c.der").write_bytes(leaf.der)
    (folder / "d.p12").write_bytes(_p12(leaf, ca, NoEncryption()))
    (folder / "e.cer").write_bytes(b"not a certificate")
    (folder / "readme.txt").write_text("ignored")
    (folder / "nested" / "deep.pem").write_bytes(leaf.pem)
    return folder


def test_directory_target_expands_to_its_certificate_files_sorted(directory: Path) -> None:
    """One file target per certificate file directly inside, sorted, extensions in any case, owner kept."""
    targets = expand_file_targets(Target(file=str(directory), owner="shop-team"))
    assert [t.file for t in targets] == [str(directory / n) for n in ["a.CRT", "b.pem", "c.der", "d.p12", "e.cer"]]
    assert {t.owner for t in targets} == {"shop-team"}


def test_expanded_paths_are_spelled_as_the_directory_path_joins_them(directory: Path) -> None:
    """A directory given as `./certs/` or `certs//` yields the same file paths (and so the same target keys)
    as `Path(directory) / name` spells them."""
    relative = Path(os.path.relpath(directory))
    for spelling in (f"./{relative}/", f"{relative}//"):
        assert [t.file for t in expand_file_targets(Target(file=spelling))][:2] == [
            str(relative / "a.CRT"),
            str(relative / "b.pem"),
        ]


def test_non_directory_targets_expand_to_themselves(tmp_path: Path) -> None:
    """A file target and an endpoint target are returned unchanged."""
    file_target = Target(file=str(tmp_path / "x.pem"))
    endpoint = Target(host="example.test")
    assert expand_file_targets(file_target) == [file_target]
    assert expand_file_targets(endpoint) == [endpoint]


def test_empty_directory_stays_one_target_that_says_why(tmp_path: Path) -> None:
    """A directory with no certificate files is not dropped silently: observing it is a `file` error."""
    target = Target(file=str(tmp_path))
    assert expand_file_targets(target) == [target]
    assert _observe(tmp_path) == ([], f"{tmp_path} is a directory with no .pem/.crt/.cer/.der/.p12/.pfx files")


def test_unexpanded_directory_with_files_says_to_observe_each(directory: Path) -> None:
    """A directory that reaches `observe_file` unexpanded names how many files it holds."""
    assert _observe(directory) == ([], f"{directory} is a directory of 5 certificate files: observe each one")


def test_observe_directory_gives_one_observation_per_file(directory: Path, chain: tuple[Issued, Issued]) -> None:
    """Every certificate file gets its own observation; a bad file is its own `file` error, not the directory's."""
    leaf, ca = chain
    observations = observe_directory(directory, now=WHEN)
    assert [(o.target.file, o.chain, o.error.kind if o.error else None) for o in observations] == [
        (str(directory / "a.CRT"), [ca.b64], None),
        (str(directory / "b.pem"), [leaf.b64], None),
        (str(directory / "c.der"), [leaf.b64], None),
        (str(directory / "d.p12"), [leaf.b64, ca.b64], None),
        (str(directory / "e.cer"), [], "file"),
    ]


def test_configured_directory_targets_are_scheduled_file_by_file(directory: Path) -> None:
    """The scanner schedules a directory from certmon.yaml as one target per certificate file."""
    config = parse_config({"targets": [{"file": str(directory)}, {"host": "example.test"}]})
    keys = [target.key for target in configured_targets(config)]
    assert keys == [f"file:{directory / n}" for n in ["a.CRT", "b.pem", "c.der", "d.p12", "e.cer"]] + [
        "example.test:443"
    ]


def test_configured_targets_are_built_as_they_are_read(tmp_path: Path) -> None:
    """Configured targets come one at a time: a directory is listed when its entry is reached, not before."""
    later = tmp_path / "later"
    later.mkdir()
    config = parse_config({"targets": [{"host": "example.test"}, {"file": str(later)}]})
    targets = configured_targets(config)
    assert next(targets).key == "example.test:443"
    (later / "new.pem").write_bytes(b"")
    assert [target.key for target in targets] == [f"file:{later / 'new.pem'}"]
