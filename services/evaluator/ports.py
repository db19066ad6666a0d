"""What the evaluator's service layer needs from the outside world: a source of the certificates a caIssuers
(AIA) URL serves. `adapters.aia.AiaFetcher` is the real one, over HTTP under the scanning address policy."""

from typing import Protocol

from cryptography import x509


class AiaError(Exception):
    """A caIssuers URL could not be used; the message says why, in words."""


class AiaSource(Protocol):
    """Fetches the certificates a caIssuers URL serves; raises AiaError when it cannot."""

    def fetch(self, url: str) -> tuple[x509.Certificate, ...]:
        """The certificates at `url` (DER or PKCS#7), or AiaError."""
        ...
