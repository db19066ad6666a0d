"""The benchmark's estate: RSA-2048 and ECDSA P-256 chains of 2 to 4 certificates, and the trust stores.

Generated with `services.demo.pki` (the same builder the test suite uses), once per run.
"""

import base64
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding

from services.demo.pki import Issued, ec_key, make_ca, make_leaf, rsa_key
from services.evaluator.adapters.trust import load_trust_store
from services.evaluator.domain import TrustStore
from shared.events import NegotiatedTls, Observation, Target, TlsFacts

#: Leaves per (key family, chain length); 2 families x 3 lengths x this = the number of distinct chains.
LEAVES_PER_SHAPE = 8


@dataclass(frozen=True)
class BenchChain:
    """One chain as a server presents it (DER, leaf first), the host it is for, and its key family."""

    family: str
    host: str
    ders: tuple[bytes, ...]

    def observation(self, now: dt.datetime) -> Observation:
        """The observation the scanner would publish for it (expiry profile, TLS 1.3)."""
        return Observation(
            target=Target(host=self.host, port=443),
            observed_at=now,
            address="192.0.2.10",
            chain=[base64.b64encode(der).decode("ascii") for der in self.ders],
            tls=TlsFacts(negotiated=NegotiatedTls(version="TLSv1.3", cipher_suite="TLS_AES_128_GCM_SHA256")),
        )


@dataclass(frozen=True)
class Estate:
    """The chains, the custom root's PEM file, and the two trust stores they are judged against."""

    chains: tuple[BenchChain, ...]
    ca_file: Path
    stores: dict[str, TrustStore]


class KeyFactory:
    """A small pool of keys reused across leaves (key generation is not what is measured)."""

    def __init__(self, family: str) -> None:
        make = (lambda: rsa_key(2048)) if family == "RSA-2048" else ec_key
        self._pool: list[CertificateIssuerPrivateKeyTypes] = [make() for _ in range(4)]
        self._next = 0

    def __call__(self) -> CertificateIssuerPrivateKeyTypes:
        key = self._pool[self._next % len(self._pool)]
        self._next += 1
        return key


def _hierarchy(family: str, key: KeyFactory) -> tuple[Issued, Issued, Issued, Issued]:
    """Root; an issuing CA directly under it; an upper CA under it with an issuing CA of its own."""
    root = make_ca(f"Bench {family} Root", key=key())
    direct = make_ca(f"Bench {family} Direct CA", issuer=root, key=key())
    upper = make_ca(f"Bench {family} Upper CA", issuer=root, key=key())
    lower = make_ca(f"Bench {family} Issuing CA", issuer=upper, key=key())
    return root, direct, upper, lower


def build_estate(directory: Path, now: dt.datetime, *, leaves_per_shape: int = LEAVES_PER_SHAPE) -> Estate:
    """Issue the chains (`leaves_per_shape` leaves for each key family and length) and write the custom CA file
    into `directory`."""
    chains: list[BenchChain] = []
    roots: list[Issued] = []
    for family in ("RSA-2048", "ECDSA-P256"):
        root, direct, upper, lower = _hierarchy(family, KeyFactory(family))
        keys = KeyFactory(family)  # leaves get keys of their own: a leaf sharing its CA's key verifies nowhere
        roots.append(root)
        # 2 certificates: leaf + a CA under the root; 3: leaf + issuing CA + upper CA; 4: the same + the root,
        # which many servers still send.
        for sent in ((direct,), (lower, upper), (lower, upper, root)):
            length = len(sent) + 1
            for n in range(leaves_per_shape):
                host = f"{family.lower()}-{length}-{n}.bench.example"
                leaf = make_leaf(
                    sent[0],
                    (host,),
                    key=keys(),
                    not_before=now - dt.timedelta(days=10),
                    not_after=now + dt.timedelta(days=80),
                )
                chains.append(BenchChain(family, host, (leaf.der, *(c.der for c in sent))))
    ca_file = directory / "bench-roots.pem"
    ca_file.write_bytes(b"".join(r.pem for r in roots))
    stores = {
        "certifi + custom CA": load_trust_store([ca_file], replace_default=False),
        "custom CA only": load_trust_store([ca_file], replace_default=True),
    }
    return Estate(chains=tuple(chains), ca_file=ca_file, stores=stores)


def write_chain_files(estate: Estate, directory: Path, *, copies: int = 1) -> list[Path]:
    """One PEM file per chain (leaf first), as a user's certificate directory holds them; `copies` of each."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for index, chain in enumerate(estate.chains):
        pem = b"".join(x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM) for der in chain.ders)
        for copy in range(copies):
            path = directory / f"{index:03d}-{copy:03d}-{chain.host}.pem"
            path.write_bytes(pem)
            paths.append(path)
    return paths
