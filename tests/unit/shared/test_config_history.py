"""The `history:` section of certmon.yaml: the retention of the reporter's history, a duration of 62 days or more."""

import pytest

from shared.config import ConfigError, parse_config


def test_history_retention_defaults_to_400_days() -> None:
    """Without `history:`, the history is kept 400 days."""
    assert parse_config({}).history.retention == 400 * 86400


@pytest.mark.parametrize(("text", "seconds"), [("90d", 90 * 86400), ("62d", 62 * 86400), ("60w", 60 * 604800)])
def test_history_retention_takes_a_duration(text: str, seconds: int) -> None:
    """The retention is written like every duration of the file."""
    assert parse_config({"history": {"retention": text}}).history.retention == seconds


@pytest.mark.parametrize("bad", ["61d", "1h", "forever", 0])
def test_a_retention_too_short_or_not_a_duration_is_refused_at_its_path(bad: object) -> None:
    """Less than the monthly report reads, or not a duration, is an error at `history.retention`."""
    with pytest.raises(ConfigError) as raised:
        parse_config({"history": {"retention": bad}})
    assert "history.retention" in str(raised.value)


def test_an_unknown_history_key_is_refused() -> None:
    """A misspelt key under `history:` is an error, not a silently ignored setting."""
    with pytest.raises(ConfigError) as raised:
        parse_config({"history": {"retention_days": 30}})
    assert "history.retention_days" in str(raised.value)
