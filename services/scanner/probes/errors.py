"""The probe's one exception: raised inside a probe to end it early, turned into `Observation.error` at its edge.

Nothing outside `services.scanner.probes` ever sees it: `observe_endpoint` and `observe_file` return
an observation with the error instead of raising.
"""

from shared.events import ObservationError
from shared.events.observation import ErrorKind


class ProbeFailure(Exception):
    """A probe could not complete; carries the error the observation reports."""

    def __init__(self, kind: ErrorKind, message: str, *, phase: str | None = None) -> None:
        super().__init__(message)
        self.error = ObservationError(kind=kind, message=message, phase=phase)
