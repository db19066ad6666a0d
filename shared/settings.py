"""Process settings from the environment (`CERTMON_*`, `__` for nesting, a secrets directory for Kubernetes).

What is watched and who is told lives in `certmon.yaml` (see `shared.config`); this holds where things run.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

#: Where Kubernetes mounts secrets as files (one file per setting, named as the setting: `link_secret`, or with the
#: prefix: `certmon_link_secret`). Only used when it exists: pydantic-settings warns about a missing directory,
#: and most machines have none.
SECRETS_DIR = Path(os.environ.get("CERTMON_SECRETS_DIR", "/run/secrets/certmon"))


class RuntimeConfigError(Exception):
    """The process cannot start with these settings (the message says what to set)."""


def _url(value: SecretStr | None, schemes: tuple[str, ...]) -> SecretStr | None:
    """Refuse an empty or malformed connection URL; the messages never repeat it (it holds a password)."""
    if value is None:
        return None
    text = value.get_secret_value().strip()
    if not text:
        raise ValueError("is set but empty (a missing Secret key?)")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (parses the port, raising ValueError when it is not a number)
    except ValueError:
        raise ValueError(f"is not a URL of the form {schemes[0]}://user:password@host:port/...") from None
    if parts.scheme not in schemes:
        raise ValueError(f"must start with {' or '.join(s + '://' for s in schemes)}")
    return value


class Settings(BaseSettings):
    """Deployment settings; every secret is a SecretStr so it never prints."""

    model_config = SettingsConfigDict(
        env_prefix="CERTMON_",
        env_nested_delimiter="__",
        secrets_dir=SECRETS_DIR if SECRETS_DIR.is_dir() else None,
        extra="ignore",
    )

    amqp_url: SecretStr | None = None
    database_url: SecretStr | None = None
    config: Path | None = Field(default=None, description="path of certmon.yaml")
    reports_url: str = "./reports"
    s3_endpoint_url: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    api_tokens: list[SecretStr] = Field(default_factory=list, description="bearer tokens that may read")
    api_write_tokens: list[SecretStr] = Field(
        default_factory=list, description="bearer tokens that may read and write (acknowledge)"
    )
    link_secret: SecretStr | None = Field(default=None, description="HMAC key of the email action links")
    trusted_user_header: str | None = Field(
        default=None,
        description="a header an authenticating proxy sets to the signed-in user (e.g. X-Forwarded-User); "
        "only safe when clients can reach the reporter through that proxy alone",
    )
    trusted_write_users: list[str] = Field(
        default_factory=list, description="users of trusted_user_header who may write (acknowledge); others read"
    )
    log_level: str = "info"
    log_format: str = "auto"  # auto | json | console
    data_dir: Path = Path("./.certmon")
    scheduler_tick_seconds: float = 5.0
    scan_concurrency: int = 64
    connect_timeout: float = 5.0
    handshake_timeout: float = 10.0
    daily_report_hour_utc: int | None = Field(
        default=6,
        ge=0,
        le=23,
        description="the daily report's hour (UTC); set in the environment it overrides reports.daily.hour_utc of "
        "certmon.yaml, which applies otherwise; None: no daily report",
    )
    delivery_limit: int = 5
    drain_seconds: float = Field(
        default=60.0,
        ge=2.0,
        description="on SIGTERM, the most a process takes to stop: it stops consuming and its loops, lets the "
        "handlers in flight finish and publishes its outbox once more, then exits 0; what is unfinished by then "
        "stays safe (an unacknowledged message goes back to its queue, an unpublished outbox row waits). Keep it "
        "below the pods' terminationGracePeriodSeconds (deploy/k8s)",
    )
    database_command_timeout: float = Field(
        default=60.0,
        gt=0,
        description="seconds a database statement may take before it fails (and its handler is retried): a "
        "connection that went silent (a dropped route, a hung proxy) must not hold a handler, its message and a "
        "pooled connection forever; migrations get an hour",
    )
    queue_max_length: int = Field(
        default=1_000_000,
        gt=0,
        description="ready messages each certmon work queue holds before RabbitMQ refuses a publish (a nack: the "
        "publisher keeps the event and retries); room for ten rounds of a 100,000-target estate",
    )

    @field_validator("amqp_url")
    @classmethod
    def _amqp_url(cls, value: SecretStr | None) -> SecretStr | None:
        return _url(value, ("amqp", "amqps"))

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        return _url(value, ("postgresql", "postgres"))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The secrets directory's files are named as the settings (`link_secret`, as a Secret's keys are in
        deploy/k8s), or with the environment's prefix (`certmon_link_secret`), which pydantic-settings alone reads."""
        bare = SecretsSettingsSource(settings_cls, env_prefix="")
        return init_settings, env_settings, dotenv_settings, bare, file_secret_settings
