"""docker-compose.yml is a working single-host deployment: every certmon service is health-checked on its
readiness, its settings name services of the file, and its certmon.yaml watches TLS endpoints served in the stack.

No Docker engine (nor `docker compose`) runs here, so the file is checked as data against what certmon reads.
"""

import datetime as dt
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from services import START_ORDER
from services.demo.serve import PORTS, write_endpoints
from shared.config import CertmonConfig, load_config
from shared.config.secrets import secret_problems
from shared.template_checks import template_problems

ROOT = Path(__file__).resolve().parents[2]
CONFIG_MOUNT = ":/etc/certmon/certmon.yaml:ro"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    """The compose file's services, anchors and merge keys resolved."""
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return compose["services"]  # type: ignore[no-any-return]


def _config_path(service: dict[str, Any]) -> Path:
    mount = next(v for v in service["volumes"] if v.endswith(CONFIG_MOUNT))
    return ROOT / mount.removesuffix(CONFIG_MOUNT)


@pytest.fixture(scope="module")
def compose_config(services: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> CertmonConfig:
    """The mounted certmon.yaml as the services load it, with the demo root that demo-tls writes at start (the
    loader checks that `trust.ca_files` exist) written here and named by its local path."""
    text = _config_path(services["scanner"]).read_text()
    (trusted,) = yaml.safe_load(text)["trust"]["ca_files"]
    scratch = tmp_path_factory.mktemp("demo")
    write_endpoints(scratch, "demo-tls", dt.datetime.now(dt.UTC), scratch / "demo-root.pem")
    local = scratch / "certmon.yaml"
    local.write_text(text.replace(trusted, str(scratch / "demo-root.pem")))
    return load_config(local)


@pytest.mark.parametrize("name", START_ORDER)
def test_each_service_is_health_checked_on_its_readiness(services: dict[str, Any], name: str) -> None:
    """The healthcheck asks /healthz/ready on the port the service serves it (CERTMON_HTTP_PORT), inside the
    container with the image's python, within a timeout shorter than the check's."""
    service = services[name]
    check = service["healthcheck"]
    assert check["test"][:3] == ["CMD", "python", "-c"]
    script = check["test"][3]
    assert "/healthz/ready" in script and "os.environ['CERTMON_HTTP_PORT']" in script
    assert "127.0.0.1" in script
    assert int(service["environment"]["CERTMON_HTTP_PORT"]) > 0
    timeout = float(re.search(r"timeout=(\d+)", script).group(1))  # type: ignore[union-attr]
    assert timeout < float(check["timeout"].removesuffix("s"))
    compile(script, "healthcheck", "exec")


@pytest.mark.parametrize("name", START_ORDER)
def test_each_service_connects_to_services_of_the_file(services: dict[str, Any], name: str) -> None:
    """The broker, database and bucket URLs name hosts that are services of the stack, on the ports they serve."""
    env = services[name]["environment"]
    for variable, service, port in (("CERTMON_AMQP_URL", "rabbitmq", 5672), ("CERTMON_DATABASE_URL", "postgres", 5432)):
        url = urlsplit(env[variable])
        assert (url.hostname, url.port) == (service, port)
        assert url.hostname in services
        assert services[name]["depends_on"][service] == {"condition": "service_healthy"}
    if "CERTMON_S3_ENDPOINT_URL" in env:
        assert urlsplit(env["CERTMON_S3_ENDPOINT_URL"]).hostname in services


def test_the_targets_are_tls_endpoints_served_in_the_stack(
    services: dict[str, Any], compose_config: CertmonConfig
) -> None:
    """Every target is a service of the file that serves the demo's TLS endpoints, on one of their ports, for
    the name the scanner connects to; the scanner waits for it."""
    assert compose_config.targets
    for target in compose_config.targets:
        assert target.host in services
        served = services[str(target.host)]
        assert served["entrypoint"][:4] == ["python", "-m", "services.demo.serve", target.host]
        assert served["image"] == services["scanner"]["image"]
        assert target.port in PORTS.values()
        assert served["healthcheck"]["test"][0] == "CMD"
        assert services["scanner"]["depends_on"][target.host] == {"condition": "service_healthy"}


def test_the_evaluator_trusts_the_root_the_demo_endpoints_write(services: dict[str, Any]) -> None:
    """demo-tls writes its root into a volume the evaluator mounts where `trust.ca_files` names it, and the
    evaluator starts after it is healthy (the file exists), so the healthy endpoint is judged healthy."""
    trusted = yaml.safe_load(_config_path(services["evaluator"]).read_text())["trust"]["ca_files"]
    served = services["demo-tls"]
    written = Path(served["entrypoint"][-1])
    volume = next(v.split(":")[0] for v in served["volumes"] if Path(v.split(":")[1]) == written.parent)
    mounts = {v.split(":")[0]: Path(v.split(":")[1]) for v in services["evaluator"]["volumes"]}
    assert [Path(p) for p in trusted] == [mounts[volume] / written.name]
    for name in START_ORDER:  # every service loads the config, which checks the file exists
        assert services[name]["depends_on"]["demo-tls"] == {"condition": "service_healthy"}
        assert f"{volume}:{mounts[volume]}:ro" in services[name]["volumes"]


def test_the_mounted_config_passes_validation_with_its_secrets(
    services: dict[str, Any], compose_config: CertmonConfig
) -> None:
    """deploy/compose/certmon.yaml is what `certmon config validate` accepts, names no secret the stack lacks,
    and mails through the SMTP service of the file."""
    paths = {_config_path(services[name]) for name in START_ORDER}
    assert paths == {ROOT / "deploy/compose/certmon.yaml"}
    config = compose_config
    assert template_problems(config) == []
    assert secret_problems(config, environ={}) == []
    assert config.channels.email is not None and config.channels.email.host in services
    assert config.channels.email.host in services["notifier"]["depends_on"]


def test_the_image_has_pango_for_pdf_reports() -> None:
    """The runtime stage installs what WeasyPrint needs from Debian, after the build stage."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    runtime = dockerfile.split("\nFROM ")[-1]
    for package in ("libpango-1.0-0", "libpangoft2-1.0-0", "fonts-dejavu-core"):
        assert package in runtime
    assert "--no-install-recommends" in runtime and "rm -rf /var/lib/apt/lists/*" in runtime
