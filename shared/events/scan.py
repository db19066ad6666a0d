"""`scan.requested.v1`: the scheduler asks a scanner worker to observe one target."""

from datetime import datetime

from shared.events.base import Frozen
from shared.events.target import Target


class ScanRequested(Frozen):
    """One scan of one target, due at `due_at`."""

    target: Target
    due_at: datetime

    @property
    def target_key(self) -> str:
        """The key of the target to scan."""
        return self.target.key
