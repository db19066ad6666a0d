"""Does the leaf name the server? RFC 6125 matching of DNS names and IP addresses.

DNS names are compared as lowercase A-labels (IDNA 2008 with UTS 46 mapping). A wildcard is accepted only as
the whole left-most label (`*.example.com`), matches exactly one non-empty label, and never sits directly on a
public suffix-like single label (`*.com`). The subject CN is consulted only when the leaf has no SAN extension,
and the finding says so: browsers ignore the CN.
"""

from collections.abc import Callable
from ipaddress import ip_address
from typing import TYPE_CHECKING

import idna
from cryptography import x509
from cryptography.x509.oid import NameOID

from services.evaluator.domain.codes import finding
from services.evaluator.domain.parse import ParsedCert
from shared.events.evaluation import Finding

if TYPE_CHECKING:
    from services.evaluator.domain.caches import EvaluatorCaches


def to_a_label(name: str) -> str | None:
    """A hostname as a lowercase A-label without the trailing dot, or None when it is not a valid name."""
    name = name.strip().rstrip(".")
    if not name:
        return None
    try:
        return idna.encode(name, uts46=True).decode("ascii").lower()
    except idna.IDNAError:
        # Real certificates carry names IDNA 2008 refuses (underscores, for one); compare those verbatim.
        return name.lower() if name.isascii() and " " not in name else None


def _pattern_labels(pattern: str, a_label: Callable[[str], str | None]) -> list[str] | None:
    """A presented identifier split into A-labels; `*` is kept as a label; None when it is unusable."""
    labels = pattern.strip().rstrip(".").lower().split(".")
    out: list[str] = []
    for label in labels:
        if label == "*":
            out.append(label)
            continue
        encoded = a_label(label)
        if encoded is None or "." in encoded:
            return None
        out.append(encoded)
    return out


def dns_name_matches(pattern: str, hostname: str, *, a_label: Callable[[str], str | None] = to_a_label) -> bool:
    """RFC 6125 §6.4: exact match, or a whole left-most-label wildcard covering exactly one label. `a_label` is
    `to_a_label`, or a memo of it (IDNA encoding is costly, and the same names recur on every scan)."""
    host = a_label(hostname)
    labels = _pattern_labels(pattern, a_label)
    if host is None or labels is None or any(not label for label in labels):
        return False
    host_labels = host.split(".")
    if "*" not in "".join(labels):
        return labels == host_labels
    wildcard_ok = labels[0] == "*" and "*" not in "".join(labels[1:]) and len(labels) >= 3
    return wildcard_ok and len(host_labels) == len(labels) and bool(host_labels[0]) and host_labels[1:] == labels[1:]


def _ip_matches(addresses: list[str], wanted: str) -> bool:
    target = ip_address(wanted)
    return any(ip_address(candidate) == target for candidate in addresses)


def _common_names(leaf: ParsedCert) -> list[str]:
    return [str(attr.value) for attr in leaf.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def as_ip(name: str) -> str | None:
    """The name as a canonical IP address (brackets allowed), or None when it is a host name."""
    try:
        return str(ip_address(name.strip("[]")))
    except ValueError:
        return None


def check_hostname(leaf: ParsedCert, server_name: str, caches: "EvaluatorCaches") -> Finding | None:
    """`hostname.mismatch` when the leaf does not name `server_name`, `hostname.cn_only` when only its CN does
    (names matched and addresses read through `caches`: a target's name is asked again on every scan, and
    `ip_address` raises for every host name, which is slow)."""
    has_san = leaf.extension(x509.SubjectAlternativeName) is not None
    ip = caches.ips(server_name)
    if ip is not None:
        if _ip_matches(leaf.ip_addresses(), ip):
            return None
        listed = ", ".join(leaf.ip_addresses()) or "none"
        return finding(
            "hostname.mismatch",
            f"the certificate does not name the IP address {ip} (SAN IP addresses: {listed})"
            + ("" if has_san else "; it has no subjectAltName extension (zlint e_ext_san_missing)"),
        )
    if has_san:
        names = leaf.dns_names()
        if any(caches.names_match(name, server_name) for name in names):
            return None
        return finding(
            "hostname.mismatch",
            f"the certificate does not name {server_name} (SAN DNS names: {', '.join(names) or 'none'})",
        )
    common_names = _common_names(leaf)
    if any(caches.names_match(cn, server_name) for cn in common_names):
        return finding(
            "hostname.cn_only",
            f"{server_name} matches only the subject CN; the certificate has no subjectAltName extension, "
            "which browsers require (zlint e_ext_san_missing)",
        )
    return finding(
        "hostname.mismatch",
        f"the certificate does not name {server_name}: it has no subjectAltName extension "
        f"(zlint e_ext_san_missing) and its CN is {', '.join(common_names) or 'absent'}",
    )
