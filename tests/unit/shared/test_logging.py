"""Secrets never reach a log line."""

import json
from collections.abc import Iterator

import pytest
import structlog

from shared.logging import configure_logging, redact_text


def test_url_passwords_are_redacted() -> None:
    """The password part of a URL is hidden, the rest kept for debugging."""
    assert redact_text("amqp://guest:hunter2@rabbit:5672/") == "amqp://guest:***@rabbit:5672/"
    assert redact_text("no secret here") == "no secret here"


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    """Each test here configures logging; put structlog back afterwards."""
    yield
    structlog.reset_defaults()


def test_secret_named_fields_and_urls_are_redacted_in_output(capsys: pytest.CaptureFixture[str]) -> None:
    """A password field, a token and a DSN in a message are all masked in the JSON line."""
    configure_logging("info", "json")
    structlog.get_logger("t").info(
        "connecting", password="hunter2", api_token="abc", dsn="postgresql://u:pw@db/x", host="db"
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["password"] == "***" and record["api_token"] == "***"
    assert record["dsn"] == "postgresql://u:***@db/x"
    assert record["host"] == "db"
    assert "hunter2" not in line and "pw@" not in line
