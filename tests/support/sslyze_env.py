"""sslyze in its own virtualenv (`<repo>/.venv-sslyze`): it pins `cryptography<47`, certmon runs a newer one.

The virtualenv is built on first use (about 20 s with a warm pip cache) and reused while `import sslyze` works.
An exclusive lock file makes parallel test runs wait for one build instead of racing; every step has a timeout,
and a failed build (offline, no index) yields None and the reason rather than an error.
"""

import fcntl
import functools
import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv-sslyze"
#: The script that scans with sslyze; run it with `sslyze_python()`, never import it.
DRIVER = Path(__file__).with_name("sslyze_driver.py")
#: The driver speaks sslyze 6's Python API.
REQUIREMENT = "sslyze>=6,<7"
BUILD_SECONDS = 300
CHECK_SECONDS = 60


class SslyzeEnvError(RuntimeError):
    """sslyze's virtualenv could not be built or does not import sslyze."""


def sslyze_python() -> Path | None:
    """The python of a virtualenv with sslyze installed (built on first use), or None if it cannot be built."""
    built = _provision(VENV)
    return built if isinstance(built, Path) else None


def sslyze_env_problem() -> str | None:
    """Why `sslyze_python()` is None (the failed step and its output), or None when sslyze is available."""
    built = _provision(VENV)
    return None if isinstance(built, Path) else built


@functools.cache
def _provision(venv: Path) -> Path | str:
    """Build (or reuse) `venv` once per process: its python, or why it is unusable."""
    try:
        return build_sslyze_env(venv)
    except SslyzeEnvError as exc:
        log.warning("sslyze_env_unavailable", venv=str(venv), reason=str(exc))
        return str(exc)


def build_sslyze_env(venv: Path, *, timeout: float = BUILD_SECONDS) -> Path:
    """Return `venv`'s python, creating the virtualenv and installing sslyze unless it already imports sslyze."""
    deadline = time.monotonic() + timeout
    python = venv / "bin" / "python"
    with _exclusive(_lock_path(venv), deadline):
        if python.exists() and _imports_sslyze(python):
            return python
        if venv.exists():  # a build that was interrupted, or a virtualenv of another interpreter
            shutil.rmtree(venv)
        log.info("sslyze_env_building", venv=str(venv), requirement=REQUIREMENT)
        try:
            _run([sys.executable, "-m", "venv", str(venv)], deadline)
            _run(
                [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", REQUIREMENT],
                deadline,
            )
        except SslyzeEnvError:
            shutil.rmtree(venv, ignore_errors=True)  # never leave a half-built venv for the next run to trust
            raise
        if not _imports_sslyze(python):
            raise SslyzeEnvError(f"sslyze installed into {venv} but does not import")
        log.info("sslyze_env_built", venv=str(venv))
        return python


def _imports_sslyze(python: Path) -> bool:
    try:
        check = subprocess.run(
            [str(python), "-c", "import sslyze"], capture_output=True, timeout=CHECK_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return check.returncode == 0


def _run(command: list[str], deadline: float) -> None:
    """Run one build step within what is left of the deadline; its failure becomes an `SslyzeEnvError`."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise SslyzeEnvError(f"out of time before {command[1:4]}")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=remaining, check=False)
    except subprocess.TimeoutExpired as exc:
        raise SslyzeEnvError(f"{' '.join(command)} took longer than {remaining:.0f} s") from exc
    except OSError as exc:
        raise SslyzeEnvError(f"{' '.join(command)} could not start: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-1000:]
        raise SslyzeEnvError(f"{' '.join(command)} exited {done.returncode}: {tail}")


def _lock_path(venv: Path) -> Path:
    """A lock file outside the repository (nothing to ignore in git), one per virtualenv path."""
    digest = hashlib.sha256(str(venv).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"certmon-sslyze-env-{digest}.lock"


@contextmanager
def _exclusive(lock: Path, deadline: float) -> Iterator[None]:
    """Hold an exclusive `flock` on `lock`, waiting for another builder at most until `deadline`."""
    with lock.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise SslyzeEnvError(f"another process held {lock} for too long") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
