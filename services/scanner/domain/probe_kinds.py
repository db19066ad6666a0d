"""The kinds of probe the scanner has, and which of them observe a target, in the order they run."""

import enum

from shared.events import Target


class ProbeKind(enum.Enum):
    """A kind of probe, as sslyze names its scan commands; `probes.registry` maps each kind to its probe."""

    FILES = "files"  # the certificates in a file
    HANDSHAKE = "handshake"  # the chain and parameters of one TLS handshake, after STARTTLS if the target needs it
    ENUMERATION = "enumeration"  # versions, cipher suites, server preference and groups, by hand-built hellos


_FILE = (ProbeKind.FILES,)
_EXPIRY = (ProbeKind.HANDSHAKE,)
_FULL = (ProbeKind.HANDSHAKE, ProbeKind.ENUMERATION)


def probe_kinds(target: Target) -> tuple[ProbeKind, ...]:
    """The probes that observe `target`, in order: a file is read; an endpoint gets one handshake, which the
    `full` profile completes with the enumeration of the same address."""
    if target.file is not None:
        return _FILE
    return _FULL if target.profile == "full" else _EXPIRY
