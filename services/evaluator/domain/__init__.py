"""The evaluator's pure rules: an observation, a policy, a trust store and `now` in; the evaluation object out.

No I/O and no clock here. One module per concern: `parse`, `expiry`, `hostname`, `keys`, `signature`, `usage`,
`chain` (with `completion` for intermediates found elsewhere), `revocation` (the stapled OCSP response),
`transparency`, `ciphers`/`protocol`, `grade`, `level`; `evaluate` composes them.
"""

from services.evaluator.domain.completion import CandidateIntermediate
from services.evaluator.domain.evaluate import certificate_info, clear_caches, evaluate
from services.evaluator.domain.parse import ParsedCert, parse_chain
from services.evaluator.domain.trust import TrustStore

__all__ = [
    "CandidateIntermediate",
    "ParsedCert",
    "TrustStore",
    "certificate_info",
    "clear_caches",
    "evaluate",
    "parse_chain",
]
