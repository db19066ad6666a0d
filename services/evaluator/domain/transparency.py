"""Certificate Transparency facts of the leaf: how many SCTs the CA embedded in it."""

import functools

from cryptography import x509

from services.evaluator.domain.parse import ParsedCert
from shared.events.evaluation import TransparencyInfo


def transparency_info(leaf: ParsedCert) -> TransparencyInfo:
    """The number of signed certificate timestamps embedded in the leaf (0 when it has none)."""
    scts = leaf.extension(x509.PrecertificateSignedCertificateTimestamps)
    return _transparency(len(scts) if scts is not None else 0)


@functools.lru_cache(maxsize=64)
def _transparency(sct_count: int) -> TransparencyInfo:
    """One frozen section per count (CAs embed 2 to 5), shared by the leaves that have it."""
    return TransparencyInfo(sct_count=sct_count)
