"""The integration tests' choice of RabbitMQ and PostgreSQL: the environment's, else the local one, else a
testcontainers container where Docker runs, else a skip that says what is missing."""

import pytest

from tests.support.services_under_test import POSTGRES, RABBITMQ, Decision, Dependency, decide


def _no_docker_asked() -> str | None:
    raise AssertionError("Docker is asked only when no server is given or listening")


@pytest.mark.parametrize("dependency", [RABBITMQ, POSTGRES])
def test_the_environment_url_wins_even_over_a_local_server(dependency: Dependency) -> None:
    """CERTMON_TEST_*_URL is used as given, whether or not the default port answers."""
    for port_open in (True, False):
        decision = decide(
            dependency, env_url="scheme://elsewhere/", port_open=port_open, docker_problem=_no_docker_asked
        )
        assert decision == Decision("local", "scheme://elsewhere/")


@pytest.mark.parametrize("dependency", [RABBITMQ, POSTGRES])
def test_a_server_on_the_default_port_is_used_without_docker(dependency: Dependency) -> None:
    """Unset variable and a listening local port: the default URL (this machine's case), Docker never asked."""
    for env_url in (None, ""):
        decision = decide(dependency, env_url=env_url, port_open=True, docker_problem=_no_docker_asked)
        assert decision == Decision("local", dependency.default_url)
    assert f"127.0.0.1:{dependency.port}" in dependency.default_url


@pytest.mark.parametrize("dependency", [RABBITMQ, POSTGRES])
def test_nothing_local_and_a_docker_engine_starts_a_container(dependency: Dependency) -> None:
    """Unset variable, nothing listening, Docker answering: a container."""
    decision = decide(dependency, env_url=None, port_open=False, docker_problem=lambda: None)
    assert decision == Decision("container")


@pytest.mark.parametrize("dependency", [RABBITMQ, POSTGRES])
def test_nothing_local_and_no_docker_skips_with_every_reason(dependency: Dependency) -> None:
    """Unset variable, nothing listening, no Docker: skip, naming the variable, the port and Docker's problem."""
    decision = decide(dependency, env_url=None, port_open=False, docker_problem=lambda: "no Docker engine: refused")
    assert decision.how == "skip" and decision.url is None
    assert dependency.label in decision.reason and dependency.variable in decision.reason
    assert f"127.0.0.1:{dependency.port}" in decision.reason
    assert "testcontainers" in decision.reason and "no Docker engine: refused" in decision.reason
