"""Which RabbitMQ and PostgreSQL the integration tests use: the ones named in the environment, else the ones
listening on the default local ports, else containers started with testcontainers where a Docker engine runs,
else none (the tests that need them are skipped, saying why)."""

import contextlib
import socket
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Dependency:
    """A service the integration tests need: its environment variable, its default URL and the local port."""

    label: str
    variable: str
    default_url: str
    port: int
    image: str


RABBITMQ = Dependency(
    "RabbitMQ", "CERTMON_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/", 5672, "rabbitmq:3.13-management"
)
POSTGRES = Dependency(
    "PostgreSQL", "CERTMON_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test", 5432, "postgres:16"
)


@dataclass(frozen=True)
class Decision:
    """Use `url` (`local`), start a container (`container`), or skip the tests that need it with `reason`."""

    how: Literal["local", "container", "skip"]
    url: str | None = None
    reason: str = ""


def decide(
    dependency: Dependency, *, env_url: str | None, port_open: bool, docker_problem: Callable[[], str | None]
) -> Decision:
    """The choice for `dependency`: the environment's URL wins, then a local server on its port; otherwise a
    container when `docker_problem()` (asked only then) finds none, else a skip that names what is missing."""
    if env_url:
        return Decision("local", env_url)
    if port_open:
        return Decision("local", dependency.default_url)
    problem = docker_problem()
    if problem is None:
        return Decision("container")
    return Decision(
        "skip",
        reason=f"{dependency.label} is needed: {dependency.variable} is unset, nothing listens on "
        f"127.0.0.1:{dependency.port}, and testcontainers cannot start one ({problem})",
    )


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def docker_problem() -> str | None:
    """None when testcontainers is installed and a Docker engine answers; else why not, in a few words."""
    try:
        import docker
    except ImportError:
        return "testcontainers is not installed: pip install -e '.[test]'"
    try:
        client = docker.from_env(timeout=5)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # the docker client raises several types for "no engine"; any of them means none
        return f"no Docker engine: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    return None


@contextlib.contextmanager
def container(dependency: Dependency) -> Iterator[str]:
    """Start `dependency` in a container for the block; yields its URL. Imports testcontainers only here."""
    with contextlib.ExitStack() as stack:
        with warnings.catch_warnings():  # testcontainers 4.x warns about its own module layout and wait decorators
            warnings.simplefilter("ignore", DeprecationWarning)
            if dependency is RABBITMQ:
                from testcontainers.community.rabbitmq import RabbitMqContainer

                rabbit = stack.enter_context(RabbitMqContainer(dependency.image, username="guest", password="guest"))
                url = f"amqp://guest:guest@{rabbit.get_container_host_ip()}:{rabbit.get_exposed_port(5672)}/"
            else:
                from testcontainers.community.postgres import PostgresContainer

                pg = stack.enter_context(
                    PostgresContainer(dependency.image, username="postgres", password="postgres", dbname="test")
                )
                url = pg.get_connection_url(driver=None)
        yield url
