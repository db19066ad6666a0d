"""The probe registries: every probe kind has its probe, and every STARTTLS protocol the config allows its module."""

import datetime as dt
import typing

import pytest

from services.scanner.domain.limits import DEFAULT_LIMITS
from services.scanner.domain.probe_kinds import ProbeKind, probe_kinds
from services.scanner.probes.registry import PROBES
from services.scanner.probes.starttls.negotiate import DIALOGUES
from shared.config.schema import TargetEntry
from shared.events import Target


def _literal_values(annotation: object) -> set[str]:
    """Every string a (possibly optional) `Literal[...]` annotation allows."""
    if typing.get_origin(annotation) is typing.Literal:
        return set(typing.get_args(annotation))
    return {value for arg in typing.get_args(annotation) for value in _literal_values(arg)}


CONFIG_PROTOCOLS = _literal_values(TargetEntry.model_fields["protocol"].annotation)
CONFIG_PROFILES = _literal_values(TargetEntry.model_fields["profile"].annotation)


def test_every_probe_kind_has_a_probe() -> None:
    """The registry maps each kind of the enum to a probe, and nothing else."""
    assert set(PROBES) == set(ProbeKind)


def test_every_starttls_protocol_the_config_allows_has_its_own_module() -> None:
    """Each protocol but plain `tls` has a dialogue, defined in the module named after it."""
    assert "tls" in CONFIG_PROTOCOLS
    assert set(DIALOGUES) == CONFIG_PROTOCOLS - {"tls"}
    for protocol, dialogue in DIALOGUES.items():
        assert dialogue.__module__ == f"services.scanner.probes.starttls.{protocol}"


@pytest.mark.parametrize("profile", sorted(CONFIG_PROFILES))
def test_every_profile_starts_with_a_handshake_of_the_endpoint(profile: str) -> None:
    """An endpoint is first observed by one handshake; only `full` adds the enumeration after it."""
    kinds = probe_kinds(Target(host="example.org", profile=profile))
    assert kinds[0] is ProbeKind.HANDSHAKE
    assert kinds == ((ProbeKind.HANDSHAKE, ProbeKind.ENUMERATION) if profile == "full" else (ProbeKind.HANDSHAKE,))


def test_a_file_target_is_only_read() -> None:
    """A file target, whatever its profile, gets the files probe alone."""
    assert probe_kinds(Target(file="/etc/ssl/cert.pem", profile="full")) == (ProbeKind.FILES,)


async def test_the_enumeration_refuses_to_run_before_a_handshake() -> None:
    """The enumeration completes an observation; without one it is a wiring error, not a peer's fault."""
    enumeration = PROBES[ProbeKind.ENUMERATION]
    with pytest.raises(ValueError, match="handshake"):
        await enumeration(
            Target(host="example.org"), None, now=dt.datetime(2030, 1, 1, tzinfo=dt.UTC), limits=DEFAULT_LIMITS
        )
