"""A deployment's bad input (a missing ConfigMap or Secret key, an empty or malformed URL, an unreadable secret)
stops a service before it connects to anything: exit 1 and one line on stderr naming what is wrong, never a
traceback or a secret's value."""

from pathlib import Path

import pytest

from tests.support.cli import run_certmon

SECRET = "s3cr3t-never-printed"
#: Nothing listens on port 1: a command that got as far as connecting would wait, and the test would time out.
GOOD = {
    "CERTMON_AMQP_URL": f"amqp://certmon:{SECRET}@127.0.0.1:1/",
    "CERTMON_DATABASE_URL": f"postgresql://certmon:{SECRET}@127.0.0.1:1/certmon",
}
CHANNELS = f"""
channels:
  email: {{host: smtp.example.test, port: 1025, from: certmon@example.test, username: certmon,
           password_file: {{secrets}}/smtp_password}}
  snmp:
    noc: {{host: 127.0.0.1, community_file: {{secrets}}/snmp_community}}
  webhook:
    chat: {{url: "https://chat.example.test/hook", secret_env: CERTMON_TEST_HOOK_SECRET}}
owners:
  ops: {{email: [ops@example.test], snmp: [noc], webhook: [chat]}}
defaults: {{owner: ops}}
# {SECRET} is in no message
"""


async def refused(command: str, env: dict[str, str]) -> str:
    """Run `certmon COMMAND` with `env` alone as its settings; return its one line of stderr after checking
    that it exited 1 without a traceback or the secret."""
    rc, out, err = await run_certmon(command, env=env, timeout=30, inherit_settings=False)
    lines = err.strip().splitlines()
    assert rc == 1, err
    assert len(lines) == 1, err
    assert "Traceback" not in err and SECRET not in err + out
    return lines[0]


@pytest.mark.parametrize("command", ["scanner", "evaluator", "alarmer", "notifier", "reporter"])
async def test_a_missing_config_file_is_named(command: str, tmp_path: Path) -> None:
    """CERTMON_CONFIG naming a file that is not there (an unmounted ConfigMap) is refused with the path."""
    line = await refused(command, {**GOOD, "CERTMON_CONFIG": str(tmp_path / "certmon.yaml")})
    assert line.startswith("certmon: configuration refused: ")
    assert f"{tmp_path / 'certmon.yaml'}" in line and "No such file" in line


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("CERTMON_DATABASE_URL", "", "is set but empty"),
        ("CERTMON_DATABASE_URL", f"certmon:{SECRET}@db/certmon", "must start with postgresql://"),
        ("CERTMON_DATABASE_URL", f"postgresql://certmon:{SECRET}@db:port/certmon", "is not a URL"),
        ("CERTMON_AMQP_URL", "", "is set but empty"),
        ("CERTMON_AMQP_URL", f"http://certmon:{SECRET}@rabbitmq:5672/", "must start with amqp://"),
    ],
)
async def test_an_empty_or_malformed_url_is_named_without_its_value(variable: str, value: str, reason: str) -> None:
    """An empty (a Secret key missing) or malformed connection URL is refused by name, not retried forever."""
    line = await refused("scanner", {**GOOD, variable: value})
    assert line.startswith(f"certmon: settings refused: {variable}: ") and reason in line


async def test_a_missing_database_url_is_named() -> None:
    """A single service without CERTMON_DATABASE_URL says which variable to set."""
    line = await refused("alarmer", {"CERTMON_AMQP_URL": GOOD["CERTMON_AMQP_URL"]})
    assert "CERTMON_DATABASE_URL" in line


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"not-a-json-list", "not valid JSON"), (b"\xff\xfe", "not UTF-8 text"), (None, "found a directory")],
)
async def test_an_unreadable_api_tokens_secret_is_named(content: bytes | None, reason: str, tmp_path: Path) -> None:
    """`api_tokens` in the secrets directory that is not a JSON list, not text or not a file stops the reporter."""
    if content is None:
        (tmp_path / "api_tokens").mkdir()
    else:
        (tmp_path / "api_tokens").write_bytes(content)
    line = await refused("reporter", {**GOOD, "CERTMON_SECRETS_DIR": str(tmp_path)})
    assert line.startswith("certmon: settings refused: ") and reason in line
    assert "api_tokens" in line.lower()


async def test_a_secrets_directory_file_is_read_under_the_settings_name(tmp_path: Path) -> None:
    """`database_url` in the secrets directory is CERTMON_DATABASE_URL (the Secret's keys in deploy/k8s):
    an empty one is refused as the variable would be."""
    (tmp_path / "database_url").write_text("\n")
    line = await refused(
        "scanner", {"CERTMON_AMQP_URL": GOOD["CERTMON_AMQP_URL"], "CERTMON_SECRETS_DIR": str(tmp_path)}
    )
    assert line.startswith("certmon: settings refused: CERTMON_DATABASE_URL: ")


async def test_missing_channel_secrets_stop_the_notifier_with_each_name(tmp_path: Path) -> None:
    """Secret files and variables certmon.yaml names but the pod lacks are listed on one line, by name."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "smtp_password").write_text(SECRET)  # present; the SNMP community is not
    config = tmp_path / "certmon.yaml"
    config.write_text(CHANNELS.replace("{secrets}", str(secrets)))
    line = await refused("notifier", {**GOOD, "CERTMON_CONFIG": str(config)})
    assert line.startswith(f"certmon: configuration refused: {config}: ")
    assert f"channels.snmp.noc.community_file: cannot read {secrets / 'snmp_community'}" in line
    assert "channels.webhook.chat.secret_env: environment variable CERTMON_TEST_HOOK_SECRET is not set" in line
    assert "smtp_password" not in line


async def test_the_other_services_start_without_the_channels_secrets(tmp_path: Path) -> None:
    """The scanner never reads the channels' secrets, so their absence does not refuse it: it goes on to
    connect (and is stopped here while it waits for the broker)."""
    config = tmp_path / "certmon.yaml"
    config.write_text(CHANNELS.replace("{secrets}", str(tmp_path)))
    with pytest.raises(TimeoutError):
        await run_certmon("scanner", env={**GOOD, "CERTMON_CONFIG": str(config)}, timeout=3, inherit_settings=False)


async def test_a_config_file_that_is_not_text_is_named(tmp_path: Path) -> None:
    """A ConfigMap mounted with binary content is refused by its path, by a service and by `config validate`."""
    config = tmp_path / "certmon.yaml"
    config.write_bytes(b"\xff\xfe\x00")
    line = await refused("evaluator", {**GOOD, "CERTMON_CONFIG": str(config)})
    assert line == f"certmon: configuration refused: {config}: (file): not UTF-8 text"
    rc, _, err = await run_certmon("config", "validate", str(config), inherit_settings=False)
    assert (rc, err.strip()) == (1, f"certmon: {config}: not UTF-8 text")


async def test_config_validate_checks_the_named_secrets_when_asked(tmp_path: Path) -> None:
    """`certmon config validate --secrets` (an init container with the Secret mounted) lists each missing secret
    at its path and exits 1; without the flag the file alone is checked."""
    config = tmp_path / "certmon.yaml"
    config.write_text(CHANNELS.replace("{secrets}", str(tmp_path)))
    env = {"COLUMNS": "200"}
    rc, out, _ = await run_certmon("config", "validate", str(config), env=env, inherit_settings=False)
    assert rc == 0, out
    rc, out, _ = await run_certmon("config", "validate", "--secrets", str(config), env=env, inherit_settings=False)
    assert rc == 1
    assert "channels.email.password_file: cannot read" in out and "channels.snmp.noc.community_file" in out
    assert "channels.webhook.chat.secret_env: environment variable CERTMON_TEST_HOOK_SECRET is not set" in out
    assert SECRET not in out
