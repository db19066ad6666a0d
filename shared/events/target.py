"""What is watched: an endpoint (host, port, STARTTLS protocol) or a certificate file."""

from typing import Literal

from pydantic import Field

from shared.events.base import Frozen

Protocol = Literal["tls", "smtp", "imap", "pop3", "ftp", "ldap", "xmpp", "postgres"]
Profile = Literal["expiry", "full"]


class TargetRef(Frozen):
    """The target as the evaluation object names it (contract: host, port, sni, protocol, server)."""

    host: str | None = None
    port: int | None = None
    sni: str | None = None
    protocol: str = "tls"
    server: str | None = None
    file: str | None = None


class Target(Frozen):
    """A target as scheduled and scanned; `key` identifies it across services and over time."""

    host: str | None = None
    port: int = Field(default=443, ge=1, le=65535)
    sni: str | None = None
    protocol: Protocol = "tls"
    server: str | None = None
    file: str | None = None
    owner: str | None = None
    profile: Profile = "expiry"
    interval_seconds: int = Field(default=3600, ge=1)
    also_without_sni: bool = False
    discovered_by: str | None = None  # the discovery sweep that registered it, if any

    @property
    def key(self) -> str:
        """A stable identity: `host:port` (with `/sni` when it differs) or `file:PATH`."""
        if self.file is not None:
            return f"file:{self.file}"
        base = f"{self.host}:{self.port}"
        if self.sni and self.sni != self.host:
            base += f"/{self.sni}"
        if self.protocol != "tls":
            base = f"{self.protocol}://{base}"
        return base

    @property
    def server_name(self) -> str | None:
        """The name sent in SNI and checked against the certificate."""
        return self.sni or self.host

    def ref(self) -> TargetRef:
        """The evaluation-object view of this target."""
        return TargetRef(
            host=self.host,
            port=None if self.file else self.port,
            sni=None if self.file else self.server_name,
            protocol="file" if self.file else self.protocol,
            server=self.server,
            file=self.file,
        )
