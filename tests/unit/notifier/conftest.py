"""Builders of alarm events for the notifier's unit tests."""

from collections.abc import Callable

import pytest

from shared.events import AlarmEvent
from tests.support.alarms import build_alarm

AlarmFactory = Callable[..., AlarmEvent]


@pytest.fixture
def make_alarm() -> AlarmFactory:
    """The alarm builder, as a fixture."""
    return build_alarm
