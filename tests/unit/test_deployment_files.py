"""docker-compose.yml describes the whole stack: every service with its command and the settings it needs.

No Docker engine runs here, so the file is checked statically, against the CLI and the settings it must feed.
"""

from pathlib import Path
from typing import Any

import pytest
import yaml

from services.composition import START_ORDER
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The parsed compose file (anchors and merge keys resolved by the YAML loader)."""
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_infrastructure(compose: dict[str, Any]) -> None:
    """RabbitMQ, PostgreSQL, an S3 server and an SMTP catcher are part of the stack."""
    images = {name: svc.get("image", "") for name, svc in compose["services"].items()}
    assert images["rabbitmq"].startswith("rabbitmq:")
    assert images["postgres"].startswith("postgres:")
    assert "minio" in images["s3"]
    assert "mailpit" in images["smtp"]


@pytest.mark.parametrize("name", START_ORDER)
def test_each_service_runs_its_command_with_broker_and_database(compose: dict[str, Any], name: str) -> None:
    """Each certmon service runs `certmon <name>` with the broker, database and config settings."""
    service = compose["services"][name]
    assert service["command"] == [name]
    assert service["image"] == "certmon:latest"
    env = service["environment"]
    assert env["CERTMON_AMQP_URL"].startswith("amqp://") and "@rabbitmq:5672" in env["CERTMON_AMQP_URL"]
    assert env["CERTMON_DATABASE_URL"].startswith("postgresql://") and "@postgres:5432" in env["CERTMON_DATABASE_URL"]
    assert env["CERTMON_CONFIG"] == "/etc/certmon/certmon.yaml"
    assert {"rabbitmq", "postgres"} <= set(service["depends_on"])
    settings = Settings(**{k.removeprefix("CERTMON_").lower(): v for k, v in env.items() if k.startswith("CERTMON_")})
    assert settings.amqp_url is not None and settings.database_url is not None


def test_image_entrypoint_is_the_certmon_command() -> None:
    """The image's entrypoint is `certmon`, so `command: [scanner]` runs `certmon scanner`."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["certmon"]' in dockerfile
    assert "USER 10001" in dockerfile


def test_reporter_gets_the_bucket_and_serves_the_dashboard(compose: dict[str, Any]) -> None:
    """The reporter writes to the S3 server's bucket and publishes port 8080."""
    reporter = compose["services"]["reporter"]
    env = reporter["environment"]
    assert env["CERTMON_REPORTS_URL"].startswith("s3://certmon-reports")
    assert env["CERTMON_S3_ENDPOINT_URL"] == "http://s3:9000"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
    assert "8080:8080" in reporter["ports"]
    assert "certmon-reports" in " ".join(compose["services"]["s3-bucket"]["entrypoint"])
