"""`observe_file`: PEM bundles (leaf first) and DER files are read; anything else is a `file` error."""

import base64
import contextlib
import datetime as dt
import os
import threading
from pathlib import Path

import structlog

from services.scanner.domain.limits import DEFAULT_LIMITS, ProbeLimits
from services.scanner.probes.files import formats
from services.scanner.probes.files.source import observe_file
from services.scanner.service_layer.observe import observe
from shared.events import Target
from tests.support.pki import Issued

WHEN = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def _observe(path: Path, limits: ProbeLimits = DEFAULT_LIMITS) -> tuple[list[str], str | None, str | None]:
    obs = observe_file(Target(file=str(path)), now=WHEN, limits=limits)
    assert obs.observed_at == WHEN
    assert obs.address is None
    return obs.chain, obs.error.kind if obs.error else None, obs.error.message if obs.error else None


def test_single_pem_certificate(tmp_path: Path, chain: tuple[Issued, Issued]) -> None:
    """One PEM certificate becomes a one-element chain with its exact DER."""
    path = tmp_path / "leaf.pem"
    path.write_bytes(chain[0].pem)
    assert _observe(path) == ([chain[0].b64], None, None)


def test_pem_bundle_keeps_file_order_and_ignores_keys(tmp_path: Path, chain: tuple[Issued, Issued]) -> None:
    """A bundle with a private key and comments yields the certificates in file order, leaf first."""
    leaf, ca = chain
    path = tmp_path / "bundle.pem"
    path.write_bytes(b"# served by web-01\n" + leaf.pem + leaf.key_pem + b"\r\n" + ca.pem.replace(b"\n", b"\r\n"))
    assert _observe(path) == ([leaf.b64, ca.b64], None, None)


def test_der_certificate(tmp_path: Path, chain: tuple[Issued, Issued]) -> None:
    """A binary DER certificate is read as-is."""
    path = tmp_path / "leaf.der"
    path.write_bytes(chain[0].der)
    assert _observe(path) == ([chain[0].b64], None, None)


def test_truncated_der_is_a_file_error(tmp_path: Path, chain: tuple[Issued, Issued]) -> None:
    """A DER file cut short does not match its declared length."""
    path = tmp_path / "cut.der"
    path.write_bytes(chain[0].der[:-10])
    assert _observe(path) == ([], "file", f"{path} is neither a PEM nor a DER certificate")


def test_garbage_is_a_file_error(tmp_path: Path) -> None:
    """Text that is neither PEM nor DER is a `file` error."""
    path = tmp_path / "notes.txt"
    path.write_bytes(b"this is not a certificate\n")
    assert _observe(path) == ([], "file", f"{path} is neither a PEM nor a DER certificate")


def test_empty_file_is_a_file_error(tmp_path: Path) -> None:
    """An empty file holds no certificate."""
    path = tmp_path / "empty.pem"
    path.write_bytes(b"")
    assert _observe(path)[1:] == ("file", f"{path} is neither a PEM nor a DER certificate")


def test_pem_with_only_a_key_is_a_file_error(tmp_path: Path, chain: tuple[Issued, Issued]) -> None:
    """PEM blocks without a CERTIFICATE block are a `file` error."""
    path = tmp_path / "key.pem"
    path.write_bytes(chain[0].key_pem)
    assert _observe(path) == ([], "file", f"{path} holds PEM blocks but no certificate")


def test_pem_with_broken_base64_is_a_file_error(tmp_path: Path) -> None:
    """A CERTIFICATE block whose body is not base64 is a `file` error naming the block."""
    path = tmp_path / "broken.pem"
    path.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot*base64!\n-----END CERTIFICATE-----\n")
    for _ in range(2):  # blocks are memoised: a refused one is refused again
        assert _observe(path) == ([], "file", f"{path}: PEM certificate #1 is not valid base64")


def test_one_certificate_wrapped_differently_is_one_chain_entry(tmp_path: Path, chain: tuple[Issued, Issued]) -> None:
    """The chain entry is the block's base64 without whitespace, however the file wraps it, read again or not."""
    body = base64.b64encode(chain[0].der).decode()
    entries: list[list[str]] = []
    for width, newline in ((64, "\n"), (76, "\n"), (64, "\r\n"), (64, "\n")):
        lines = newline.join(body[i : i + width] for i in range(0, len(body), width))
        path = tmp_path / f"leaf-{len(entries)}.pem"
        path.write_text(f"-----BEGIN CERTIFICATE-----{newline}{lines}{newline}-----END CERTIFICATE-----{newline}")
        entries.append(_observe(path)[0])
    assert entries == [[body]] * 4


def test_malformed_certificate_in_valid_pem_is_passed_on(tmp_path: Path) -> None:
    """Well-formed PEM around a malformed certificate is observed; the evaluator makes it a finding."""
    body = base64.b64encode(b"\x30\x03\x02\x01\x01").decode()
    path = tmp_path / "odd.pem"
    path.write_text(f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n")
    assert _observe(path) == ([body], None, None)


def test_missing_file_is_a_file_error(tmp_path: Path) -> None:
    """A path that does not exist is a `file` error saying why."""
    path = tmp_path / "gone.pem"
    assert _observe(path) == ([], "file", f"cannot read {path}: No such file or directory")


def test_directory_is_a_file_error(tmp_path: Path) -> None:
    """A directory reaching `observe_file` unexpanded is a `file` error saying what it holds."""
    assert _observe(tmp_path) == ([], "file", f"{tmp_path} is a directory with no .pem/.crt/.cer/.der/.p12/.pfx files")


def test_oversized_file_is_a_file_error(tmp_path: Path, chain: tuple[Issued, Issued]) -> None:
    """A file over `max_file_bytes` is refused without being parsed."""
    path = tmp_path / "big.pem"
    path.write_bytes(chain[0].pem)
    assert _observe(path, ProbeLimits(max_file_bytes=100)) == ([], "file", f"{path} is larger than 100 bytes")


def test_bundle_longer_than_max_chain_keeps_its_head(tmp_path: Path, chain: tuple[Issued, Issued]) -> None:
    """A bundle longer than `max_chain` keeps the first certificates and is not an error."""
    leaf, ca = chain
    path = tmp_path / "many.pem"
    path.write_bytes(leaf.pem + ca.pem * 5)
    assert _observe(path, ProbeLimits(max_chain=2)) == ([leaf.b64, ca.b64], None, None)


def test_a_pipe_is_read_to_its_end(tmp_path: Path, chain: tuple[Issued, Issued]) -> None:
    """A named pipe reports size 0 and delivers its bytes in pieces: all of them are read, up to the limit."""
    leaf, ca = chain
    pipe = tmp_path / "chain.pem"
    os.mkfifo(pipe)

    def feed(data: bytes) -> None:
        with contextlib.suppress(BrokenPipeError), open(pipe, "wb") as writer:  # broken: the reader stopped
            for start in range(0, len(data), 500):  # several writes: the reader sees short reads
                writer.write(data[start : start + 500])
                writer.flush()

    for data, limits, expected in (
        (leaf.pem + ca.pem, DEFAULT_LIMITS, ([leaf.b64, ca.b64], None, None)),
        (leaf.pem * 4, ProbeLimits(max_file_bytes=2000), ([], "file", f"{pipe} is larger than 2000 bytes")),
    ):
        feeder = threading.Thread(target=feed, args=(data,), daemon=True)
        feeder.start()
        try:
            assert _observe(pipe, limits) == expected
        finally:
            feeder.join(timeout=10)


def test_a_large_pem_block_is_read_but_not_memoised(tmp_path: Path) -> None:
    """The PEM block memo keeps only certificate-sized blocks: a directory of megabyte blocks cannot fill it."""
    body = base64.b64encode(os.urandom(48 * 1024)).decode()  # 64 KiB of base64, within the file size limit
    path = tmp_path / "large.pem"
    path.write_text(f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n")
    kept = formats._memoised_entry.cache_info().currsize
    assert _observe(path) == ([body], None, None)  # passed on: the evaluator says it is too large
    assert formats._memoised_entry.cache_info().currsize == kept


async def test_the_scanner_logs_each_file_it_observes(tmp_path: Path, chain: tuple[Issued, Issued]) -> None:
    """The scanner's observation of a file target is logged as an endpoint's is: what it held, or the error."""
    readable, missing = tmp_path / "chain.pem", tmp_path / "missing.pem"
    readable.write_bytes(chain[0].pem + chain[1].pem)
    with structlog.testing.capture_logs() as logs:
        await observe(Target(file=str(readable)), now=WHEN)
        await observe(Target(file=str(missing)), now=WHEN)
    observed = [(e["target"], e["certificates"], e["error_kind"]) for e in logs if e["event"] == "file_observed"]
    assert observed == [(f"file:{readable}", 2, None), (f"file:{missing}", 0, "file")]
