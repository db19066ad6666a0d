"""Certificate Transparency facts of the leaf: how many SCTs the CA embedded in it."""

from cryptography import x509

from services.evaluator.domain.parse import ParsedCert
from shared.events.evaluation import TransparencyInfo


def transparency_info(leaf: ParsedCert) -> TransparencyInfo:
    """The number of signed certificate timestamps embedded in the leaf (0 when it has none)."""
    scts = leaf.extension(x509.PrecertificateSignedCertificateTimestamps)
    return TransparencyInfo(sct_count=len(scts) if scts is not None else 0)
