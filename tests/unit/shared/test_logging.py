"""Secrets never reach a log line."""

import json

import structlog

from shared.logging import configure_logging, redact_text


def test_url_passwords_are_redacted() -> None:
    """The password part of a URL is hidden, the rest kept for debugging."""
    assert redact_text("amqp://guest:hunter2@rabbit:5672/") == "amqp://guest:***@rabbit:5672/"
    assert redact_text("no secret here") == "no secret here"


def test_secret_named_fields_and_urls_are_redacted_in_output(capsys) -> None:
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
