"""Loading the trust store: the Mozilla bundle (`certifi`) plus, or replaced by, the user's CA files.

Errors: `TrustStoreError` when a CA file cannot be read, holds no certificate, or the result is empty.
"""

import functools
import warnings
from pathlib import Path

import certifi
import structlog
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.utils import CryptographyDeprecationWarning

from services.evaluator.domain.trust import TrustStore

log = structlog.get_logger(__name__)


class TrustStoreError(Exception):
    """The configured trust store cannot be built; the message names the file and the reason."""


def _read_bundle(path: Path) -> list[x509.Certificate]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TrustStoreError(f"{path}: {exc.strerror or exc}") from exc
    try:
        with warnings.catch_warnings():
            # The Mozilla bundle still holds a root with a non-positive serial; it is a valid anchor all the same.
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise TrustStoreError(f"{path}: not a PEM certificate bundle ({exc})") from exc
    usable: list[x509.Certificate] = []
    for cert in certs:
        try:
            cert.public_key()
        except (ValueError, UnsupportedAlgorithm):  # an anchor whose key we cannot use can anchor nothing
            log.warning("trust_anchor_skipped", file=str(path), subject=cert.subject.rfc4514_string())
            continue
        usable.append(cert)
    return usable


@functools.cache
def _load(ca_files: tuple[Path, ...], replace_default: bool) -> TrustStore:
    anchors: list[x509.Certificate] = [] if replace_default else _read_bundle(Path(certifi.where()))
    for path in ca_files:
        anchors.extend(_read_bundle(path))
    if not anchors:
        raise TrustStoreError("the trust store is empty: replace_default is set and no CA file holds a certificate")
    parts = [] if replace_default else ["Mozilla bundle (certifi)"]
    parts += [str(p) for p in ca_files]
    store = TrustStore(anchors=tuple(anchors), description=" + ".join(parts))
    log.info("trust_store_loaded", anchors=len(store), sources=parts)
    return store


def load_trust_store(ca_files: list[Path], replace_default: bool) -> TrustStore:
    """The anchors to verify against: certifi's bundle plus `ca_files`, or only `ca_files` with `replace_default`.

    Cached per (files, flag) for the life of the process: building the bundle's verifier store is not free.
    """
    return _load(tuple(ca_files), replace_default)
