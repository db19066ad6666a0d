"""The scanner: schedules targets, probes TLS/STARTTLS endpoints and certificate files, publishes observations.

`observe` is the one-off entry point (used by `certmon check`); `bootstrap` wires the service.
"""

from services.scanner.domain import DEFAULT_LIMITS, ProbeLimits
from services.scanner.observe import observe

__all__ = ["DEFAULT_LIMITS", "ProbeLimits", "observe"]
