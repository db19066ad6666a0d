"""Label values of the exporter-compatible families, taken from the certificates an evaluation carries.

ssl_exporter labels a certificate with `serial_no, issuer_cn, cn, dnsnames, ips, emails, ou`; x509-certificate-
exporter with `serial_number` and six subject and six issuer name fields. Both print the serial in decimal.
Distinguished names arrive as RFC 4514 strings; `Names` reads them with a small parser and remembers the recent
ones (issuers repeat across the estate; cryptography's parser would cost seconds per 100,000 targets).
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from string import hexdigits

from services.reporter.adapters.metric_text import escape
from shared.events import Evaluation

#: SAN lists can be huge; the labels keep the first names only, to bound series size.
MAX_DNSNAMES = 20
#: Names and label texts `Names` remembers: far more than the issuers of an estate, far fewer than its leaves.
REMEMBERED = 4096
#: The name fields x509-certificate-exporter puts in its labels, in its order.
X509_NAME_FIELDS = ("C", "ST", "L", "O", "OU", "CN")
# One attribute of a distinguished name: a type, "=", and a value up to the next unescaped "," or "+".
_ATTRIBUTE = re.compile(r"(?:^|[,+])\s*([A-Za-z][A-Za-z0-9-]*|[0-9.]+)\s*=((?:\\.|[^,+\\])*)")


def _unescape(value: str) -> str:
    """An RFC 4514 value without its escapes (`\\,` and hex pairs such as `\\2C` or UTF-8 `\\C3\\A9`)."""
    if "\\" not in value:
        return value
    out = bytearray()
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            pair = value[i + 1 : i + 3]
            if len(pair) == 2 and pair[0] in hexdigits and pair[1] in hexdigits:
                out.append(int(pair, 16))
                i += 3
                continue
            char = value[i + 1]
            i += 1
        out += char.encode()
        i += 1
    return out.decode("utf-8", "replace")


def name_fields(distinguished_name: str) -> dict[str, str]:
    """The first value of each attribute type (upper-cased short name) of an RFC 4514 name; {} for junk."""
    fields: dict[str, str] = {}
    for match in _ATTRIBUTE.finditer(distinguished_name):
        fields.setdefault(match[1].upper(), _unescape(match[2].strip()))
    return fields


def common_name(distinguished_name: str) -> str:
    """The CN of an RFC 4514 distinguished name, or "" when it has none."""
    return name_fields(distinguished_name).get("CN", "")


def _is_ip(name: str) -> bool:
    # A DNS name never holds ":" (IPv6) and never ends in a digit-only label (IPv4); the events print IPs as such.
    return ":" in name or name.replace(".", "").isdigit()


def _framed(values: Sequence[str]) -> str:
    return f",{','.join(values[:MAX_DNSNAMES])}," if values else ""


def dnsnames_label(san: Sequence[str]) -> str:
    """ssl_exporter's `dnsnames` label: `,a.example,b.example,` (DNS names only), or "" without any."""
    return _framed([name for name in (s.removeprefix("DNS:") for s in san) if not _is_ip(name)])


def ips_label(san: Sequence[str]) -> str:
    """ssl_exporter's `ips` label: the IP addresses of the SAN framed by commas, or ""."""
    return _framed([name for name in (s.removeprefix("IP:") for s in san) if _is_ip(name)])


def decimal_serial(serial: str | None) -> str:
    """A serial as both exporters print it: decimal (certmon's events carry it in hex); "" when unknown."""
    if not serial:
        return ""
    try:
        return str(int(serial.replace(":", ""), 16))
    except ValueError:
        return ""


@dataclass(frozen=True, slots=True)
class Cert:
    """One certificate as the families need it (the leaf, or a certificate of the chain as presented); times are
    whole Unix seconds, as the exporters print them."""

    fingerprint: str
    subject: str
    issuer: str
    serial: str | None
    not_before: int | None
    not_after: int
    san: tuple[str, ...] = ()


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def certificates(evaluation: Evaluation) -> list[Cert]:
    """The certificates the target presented, leaf first, each once; [] when it presented none."""
    leaf = evaluation.certificate
    if leaf is None:
        return []
    found = [
        Cert(
            leaf.fingerprint_sha256,
            leaf.subject,
            leaf.issuer,
            leaf.serial,
            _seconds(leaf.not_before),
            _seconds(leaf.not_after),
            tuple(leaf.san),
        )
    ]
    seen = {leaf.fingerprint_sha256}
    for cert in evaluation.chain.presented:
        if cert.fingerprint_sha256 not in seen:
            seen.add(cert.fingerprint_sha256)
            not_before = _seconds(cert.not_before) if cert.not_before is not None else None
            found.append(
                Cert(
                    cert.fingerprint_sha256,
                    cert.subject,
                    cert.issuer,
                    cert.serial,
                    not_before,
                    _seconds(cert.not_after),
                )
            )
    return found


class Names:
    """Escaped label text per certificate, with each distinguished name parsed once while it is in use.

    A scrape reads the estate a page at a time, so what is remembered is bounded (least recently used first out):
    the issuers, which repeat across the estate, stay; each leaf's names go once its target is written.
    """

    def __init__(self, remembered: int = REMEMBERED) -> None:
        self._fields = lru_cache(maxsize=remembered)(name_fields)
        self._ssl = lru_cache(maxsize=remembered)(self._ssl_labels)
        self._x509 = lru_cache(maxsize=remembered)(self._x509_labels)

    def fields(self, distinguished_name: str) -> dict[str, str]:
        """`name_fields`, remembered (do not change the result)."""
        return self._fields(distinguished_name)

    def ssl(self, cert: Cert) -> str:
        """ssl_exporter's certificate labels: serial_no, issuer_cn, cn, dnsnames, ips, emails, ou."""
        return self._ssl(cert)

    def x509(self, cert: Cert | None) -> str:
        """x509-certificate-exporter's certificate labels (serial_number, subject_*, issuer_*); all "" for none."""
        return self._x509(cert)

    def _ssl_labels(self, cert: Cert) -> str:
        subject = self.fields(cert.subject)
        ou = subject.get("OU", "")
        return (
            f'serial_no="{decimal_serial(cert.serial)}",'
            f'issuer_cn="{escape(self.fields(cert.issuer).get("CN", ""))}",'
            f'cn="{escape(subject.get("CN", ""))}",'
            f'dnsnames="{escape(dnsnames_label(cert.san))}",'
            f'ips="{escape(ips_label(cert.san))}",'
            # certmon's events carry DNS and IP alternative names only.
            'emails="",'
            f'ou="{escape(f",{ou}," if ou else "")}"'
        )

    def _x509_labels(self, cert: Cert | None) -> str:
        subject = self.fields(cert.subject) if cert is not None else {}
        issuer = self.fields(cert.issuer) if cert is not None else {}
        parts = [f'serial_number="{decimal_serial(cert.serial if cert is not None else None)}"']
        parts += [f'subject_{f}="{escape(subject.get(f, ""))}"' for f in X509_NAME_FIELDS]
        parts += [f'issuer_{f}="{escape(issuer.get(f, ""))}"' for f in X509_NAME_FIELDS]
        return ",".join(parts)
