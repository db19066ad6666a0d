"""Bad settings in the environment stop the command with one line per variable, not a traceback."""

import pytest

from services.cli import main


@pytest.mark.parametrize(("command", "code"), [(["evaluator"], 1), (["check", "example.test"], 3)])
def test_a_bad_setting_is_named_in_one_line(
    command: list[str], code: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A service exits 1 and `check` 3 (unknown), naming the variable and the reason, without its value."""
    monkeypatch.setenv("CERTMON_DAILY_REPORT_HOUR_UTC", "sixish")
    assert main(command) == code
    err = capsys.readouterr().err
    assert err.startswith("certmon: settings refused: CERTMON_DAILY_REPORT_HOUR_UTC: ")
    assert "sixish" not in err and "Traceback" not in err
