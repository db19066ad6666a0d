"""The bare cost of a directory of chain files: `python -m benchmarks.evaluate.bare_files CA_FILE DIR`.

One process that does only what `cryptography` must do for each file: read it, parse its PEM, and verify the
leaf (first certificate) with the others as intermediates, through `PolicyBuilder` with the trust store certmon
uses by default plus the custom CA (certifi's bundle + CA_FILE). The subject is the leaf's first DNS SAN. Prints
one JSON object: files, the seconds the loop took (the verification cost), and those that verified.
"""

import datetime as dt
import json
import sys
import time
import warnings
from pathlib import Path

import certifi
from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError


def _anchors(ca_file: Path) -> list[x509.Certificate]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)  # a Mozilla root with a negative serial
        return x509.load_pem_x509_certificates(Path(certifi.where()).read_bytes() + ca_file.read_bytes())


def main() -> None:
    """Verify every chain file in DIR once; print the figures as JSON."""
    ca_file, directory = Path(sys.argv[1]), Path(sys.argv[2])
    files = sorted(directory.glob("*.pem"))  # as `write_chain_files` names them
    store = Store(_anchors(ca_file))
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    verified = 0
    for path in files:
        leaf, *intermediates = x509.load_pem_x509_certificates(path.read_bytes())
        name = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName
        )[0]
        try:
            PolicyBuilder().store(store).time(now).build_server_verifier(x509.DNSName(name)).verify(leaf, intermediates)
            verified += 1
        except VerificationError:
            pass
    seconds = time.perf_counter() - started
    print(json.dumps({"files": len(files), "seconds": seconds, "verified": verified}))


if __name__ == "__main__":
    main()
