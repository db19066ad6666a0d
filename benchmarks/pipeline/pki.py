"""The benchmark's certificates: a few EC roots, and distinct leaves signed directly by them.

Leaves are signed by a root the config trusts (`trust.ca_files`), so a leaf alone is a complete, trusted chain and
the estate is healthy: the pipeline's work is observation, evaluation and storage, not thousands of alarms. One
key pair is shared by all leaves (EC key generation would dominate), but every leaf has its own serial, names and
validity, so each is a distinct certificate (its own fingerprint) to the evaluator's caches.
"""

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PEM = serialization.Encoding.PEM


@dataclass
class Authority:
    """A self-signed root that signs leaves."""

    name: x509.Name
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def make_roots(count: int) -> list[Authority]:
    """`count` EC P-256 roots."""
    now = dt.datetime.now(dt.UTC)
    roots = []
    for index in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "certmon pipeline bench"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"certmon bench root {index}"),
            ]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=30))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        roots.append(Authority(name, key, cert))
    return roots


class LeafFactory:
    """Distinct server leaves sharing one key pair."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.key_pem = self.key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        self._public = self.key.public_key()
        self._ski = x509.SubjectKeyIdentifier.from_public_key(self._public)
        self._now = dt.datetime.now(dt.UTC)

    def leaf(self, issuer: Authority, name: str, *, days: float, ip: str | None = None) -> bytes:
        """A PEM leaf for `name` (and `ip`), valid from yesterday until `days` from now."""
        alt: list[x509.GeneralName] = [x509.DNSName(name)]
        if ip is not None:
            alt.append(x509.IPAddress(ipaddress.ip_address(ip)))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(issuer.name)
            .public_key(self._public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._now - dt.timedelta(days=1))
            .not_valid_after(self._now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(self._ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
            .sign(issuer.key, hashes.SHA256())
        )
        return cert.public_bytes(PEM)


def write_roots(roots: list[Authority], path: Path) -> None:
    """The roots as one PEM bundle (the config's `trust.ca_files` entry)."""
    path.write_bytes(b"".join(root.cert.public_bytes(PEM) for root in roots))


def write_file_estate(
    factory: LeafFactory, roots: list[Authority], directory: Path, count: int, *, warning_every: int
) -> list[Path]:
    """`count` PEM leaves in `directory`; every `warning_every`-th expires in 20 days (a warning alarm, so the
    alarmer and notifier have some work), the others in a year. Returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        days = 20.0 if warning_every and index % warning_every == warning_every - 1 else 365.0
        path = directory / f"leaf-{index:06d}.pem"
        path.write_bytes(factory.leaf(roots[index % len(roots)], f"file-{index}.bench.test", days=days))
        paths.append(path)
    return paths
