"""The `certmon.yaml` keys of issue 14: reminder cadences, SNMP v2c/v3 receivers, webhooks, delivery retries;
each validated with its path, each resolved the way thresholds are."""

from pathlib import Path

import pytest

from shared.config import CertificateFacts, ConfigError, load_config, parse_config, resolve_policy
from shared.events import Target
from shared.template_checks import template_problems

TARGET = Target(host="shop.example.com", port=443, server="web-01")
SHOP = CertificateFacts(fingerprint_sha256="ab" * 32, san=("www.shop.example.com",))


def problems(data: dict[str, object]) -> dict[str, str]:
    """path → message of every problem `parse_config` reports."""
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return {p.path: p.message for p in caught.value.problems}


def test_reminder_cadence_defaults_to_daily_critical_weekly_warning_no_info() -> None:
    """With no `reminders` anywhere: critical every day, warning every week, info never."""
    policy = resolve_policy(parse_config({}), TARGET, SHOP)
    assert (policy.reminder_seconds("critical"), policy.reminder_seconds("warning")) == (86400, 604800)
    assert policy.reminder_seconds("info") is None and policy.reminder_seconds("ok") is None


def test_reminder_cadence_layers_like_thresholds_and_off_switches_a_level_off() -> None:
    """defaults < owner < server < certificate rule; a layer sets only the levels it names; `off` is none."""
    config = parse_config(
        {
            "defaults": {"owner": "ops", "reminders": {"critical": "12h"}},
            "owners": {"ops": {"reminders": {"warning": "off", "info": "30d"}}},
            "servers": {"web-01": {"reminders": {"critical": "5s"}}},
            "certificates": [{"match": {"san": "*.shop.example.com"}, "reminders": {"info": "1w"}}],
        }
    )
    policy = resolve_policy(config, TARGET, SHOP)
    assert policy.reminders == {"critical": 5, "warning": None, "info": 604800}
    other = resolve_policy(config, Target(host="other.example.com", port=443), CertificateFacts())
    assert other.reminders == {"critical": 43200, "warning": None, "info": 2592000}


def test_off_written_bare_in_yaml_is_the_word_off_not_false(tmp_path: Path) -> None:
    """The README's `reminders: {info: off}` and `severities: {tls.no_tls13: off}` load as written (YAML 1.1 would
    read a bare off as false), while boolean keys still take true, false, yes and on."""
    path = tmp_path / "certmon.yaml"
    path.write_text(
        "defaults:\n"
        "  reminders: {critical: 1d, warning: 7d, info: off}\n"
        "  severities: {tls.no_tls13: off}\n"
        "channels:\n"
        "  email: {host: smtp.example.com, from: certmon@example.com, starttls: yes}\n"
    )
    config = load_config(path)
    assert config.defaults.reminders.info == "off"
    assert config.defaults.severities == {"tls.no_tls13": "off"}
    assert config.channels.email is not None and config.channels.email.starttls is True
    assert resolve_policy(config, TARGET, SHOP).reminder_seconds("info") is None


def test_a_bad_cadence_is_reported_with_its_path() -> None:
    """A cadence is a duration or `off`."""
    found = problems({"defaults": {"reminders": {"critical": "sometimes"}}})
    assert any(path.startswith("defaults.reminders.critical") for path in found)


def test_snmp_v3_receiver_needs_a_user_and_a_fixed_engine_id_and_knows_its_security_level() -> None:
    """v3 traps come from certmon's engine, which the receiver registers: the engine id is required."""
    found = problems({"channels": {"snmp": {"noc": {"host": "10.0.0.9", "version": "v3", "user": "certmon"}}}})
    assert "engine_id" in found["channels.snmp.noc"]
    config = parse_config(
        {
            "channels": {
                "snmp": {
                    "a": {"host": "h", "version": "v3", "user": "u", "engine_id": "0x80:00:00:00:01:02:03:04"},
                    "b": {"host": "h", "version": "v3", "user": "u", "engine_id": "8000000001", "auth_key_env": "K"},
                    "c": {
                        "host": "h",
                        "version": "v3",
                        "user": "u",
                        "engine_id": "8000000001",
                        "auth_key_file": "/run/secrets/auth",
                        "priv_key_env": "P",
                        "auth_protocol": "SHA-512",
                        "priv_protocol": "AES-256",
                    },
                }
            }
        }
    )
    receivers = config.channels.snmp
    assert receivers["a"].engine_id == "8000000001020304"
    assert [receivers[n].security_level for n in "abc"] == ["noAuthNoPriv", "authNoPriv", "authPriv"]
    assert receivers["a"].auth_protocol == "SHA-256" and receivers["a"].priv_protocol == "AES-128"
    assert receivers["a"].enterprise_oid == "1.3.6.1.4.1.32473"


@pytest.mark.parametrize(
    ("receiver", "reason"),
    [
        ({"host": "h"}, "community_env or community_file"),
        ({"host": "h", "community_env": "C", "community_file": "/c"}, "not both"),
        ({"host": "h", "version": "v3", "user": "u", "engine_id": "8000000001", "priv_key_env": "P"}, "needs auth"),
        ({"host": "h", "version": "v3", "user": "u", "engine_id": "80"}, "5 to 32 octets"),
        ({"host": "h", "community_env": "C", "auth_protocol": "MD5"}, "SHA"),
        ({"host": "h", "community_env": "C", "enterprise_oid": "1.3.6.1.2.1.1"}, "1.3.6.1.4.1"),
    ],
)
def test_snmp_receiver_mistakes_are_explained(receiver: dict[str, object], reason: str) -> None:
    """Each mistake in a receiver is an error at `channels.snmp.<name>` (or below) saying what to fix."""
    found = problems({"channels": {"snmp": {"noc": receiver}}})
    assert any(path.startswith("channels.snmp.noc") and reason in message for path, message in found.items()), found


def test_webhook_channel_formats_urls_and_headers() -> None:
    """A webhook has an http(s) URL, a format, optional secret and headers; credentials never sit in the URL."""
    config = parse_config(
        {
            "channels": {
                "webhook": {
                    "chat": {"url": "https://chat.example.com/hooks/abc", "format": "slack", "secret_env": "S"},
                    "pager": {"url": "http://10.0.0.7:8080/", "headers_env": {"Authorization": "PAGER_TOKEN"}},
                }
            }
        }
    )
    assert config.channels.webhook["pager"].format == "generic"
    found = problems(
        {
            "channels": {
                "webhook": {
                    "a": {"url": "ftp://example.com/"},
                    "b": {"url": "https://user:pw@example.com/"},
                    "c": {"url": "https://example.com/", "format": "teams"},
                    "d": {"url": "https://example.com/", "headers": {"Bad Header": "x"}},
                    "e": {"url": "https://example.com/", "secret_env": "S", "secret_file": "/s"},
                }
            }
        }
    )
    assert {path.split(".")[2] for path in found} == {"a", "b", "c", "d", "e"}


def test_unknown_receiver_names_are_errors_with_their_path() -> None:
    """An owner naming a receiver or webhook that `channels` does not define is refused, not ignored."""
    found = problems(
        {
            "channels": {"webhook": {"chat": {"url": "https://chat.example.com/"}}},
            "owners": {"ops": {"snmp": ["noc"], "webhook": ["chat", "pager"]}},
        }
    )
    assert found == {
        "owners.ops.snmp[0]": "SNMP receiver 'noc' is not in channels.snmp",
        "owners.ops.webhook[1]": "webhook 'pager' is not in channels.webhook",
    }


def test_owner_channels_reach_the_alarm_owner_refs() -> None:
    """The webhooks an owner lists travel with the alarm's owners, like its SNMP receivers."""
    from shared.config import resolve_owners

    config = parse_config(
        {
            "channels": {"webhook": {"chat": {"url": "https://chat.example.com/"}}},
            "defaults": {"owner": "ops"},
            "owners": {"ops": {"webhook": ["chat"]}},
        }
    )
    (owner,) = resolve_owners(config, TARGET, SHOP)
    assert owner.webhook == ["chat"]


def test_delivery_retry_and_email_template_keys() -> None:
    """`channels.retry` bounds how long a failing delivery is retried; email may name a template directory."""
    config = parse_config(
        {
            "channels": {
                "retry": {"attempts": 2, "backoff": "5s", "give_up_after": "6h"},
                "email": {"host": "smtp", "from": "certmon@example.com", "templates": "/etc/certmon/templates"},
            }
        }
    )
    assert (config.channels.retry.attempts, config.channels.retry.backoff) == (2, 5)
    assert config.channels.retry.give_up_after == 21600
    assert config.channels.email is not None and config.channels.email.ack_link_expires == 7 * 86400
    assert "channels.retry.attempts" in problems({"channels": {"retry": {"attempts": 0}}})


def test_a_message_template_that_does_not_parse_is_a_problem_at_its_path() -> None:
    """`certmon config validate` and the notifier's start refuse a message_template Jinja cannot parse."""
    config = parse_config(
        {"channels": {"snmp": {"noc": {"host": "h", "community_env": "C", "message_template": "ok\n{% if %}"}}}}
    )
    assert [str(p) for p in template_problems(config)] == [
        "channels.snmp.noc.message_template: template line 2: Expected an expression, got 'end of statement block'"
    ]
    fine = parse_config(
        {"channels": {"snmp": {"noc": {"host": "h", "community_env": "C", "message_template": "{{ a }}"}}}}
    )
    assert template_problems(fine) == []
