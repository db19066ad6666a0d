"""The evaluator's pure rules: an observation, a policy, a trust store and `now` in; the evaluation object out.

No I/O and no clock here. One module per concern: `parse`, `expiry`, `hostname`, `keys`, `signature`, `usage`,
`chain` (with `completion` for intermediates found elsewhere), `revocation` (the stapled OCSP response),
`transparency`, `ciphers`/`protocol`, `grade`, `level`; `evaluate` composes them. What they keep between
evaluations lives in one `EvaluatorCaches`, built by the composition root and passed in.
"""

from services.evaluator.domain.caches import EvaluatorCaches
from services.evaluator.domain.completion import CandidateIntermediate
from services.evaluator.domain.evaluate import certificate_info, evaluate
from services.evaluator.domain.parse import ParsedCert, parse_chain
from services.evaluator.domain.trust import TrustStore

__all__ = [
    "CandidateIntermediate",
    "EvaluatorCaches",
    "ParsedCert",
    "TrustStore",
    "certificate_info",
    "evaluate",
    "parse_chain",
]
