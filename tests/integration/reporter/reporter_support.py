"""Helpers shared by the reporter's integration tests (fixtures live in conftest.py)."""

import warnings
from pathlib import Path
from typing import Any

from shared.settings import Settings

#: A queue that keeps the reporter's announcements, as a subscriber downstream would.
ANNOUNCEMENTS = "test.reporter.announcements"


def make_settings(secrets_dir: Path, **values: Any) -> Settings:
    """Settings from explicit values, reading secrets from `secrets_dir` (an existing, empty folder).

    shared.settings sets `secrets_dir_missing`, which this pydantic-settings version ignores and warns about on
    every construction; with warnings as errors that would fail the test, so only that warning is silenced.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Config key `secrets_dir_missing`", category=UserWarning)
        return Settings(_secrets_dir=secrets_dir, **values)  # type: ignore[call-arg]
