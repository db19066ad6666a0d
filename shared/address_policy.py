"""Where certmon may connect: the one CIDR allow/deny policy that both the scanner (the endpoints it probes) and
the notifier (the webhooks it posts to) apply to every resolved address before connecting.

`certmon.yaml`'s `scanning.deny` (link-local and cloud metadata addresses by default) and `scanning.allow`
(exceptions inside `deny`) configure it. Pure: it judges an address given as an argument and resolves nothing.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from shared.config.schema import Scanning

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address


def networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """CIDR strings (host bits allowed, as `10.0.0.5/8`) as networks; raises ValueError for a malformed one."""
    return tuple(ip_network(cidr, strict=False) for cidr in cidrs)


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses may be connected to: anything not in `deny`, and anything in `allow` even if denied."""

    deny: tuple[Network, ...] = ()
    allow: tuple[Network, ...] = ()

    @classmethod
    def from_scanning(cls, scanning: Scanning) -> "AddressPolicy":
        """The policy of `certmon.yaml`'s `scanning:` section."""
        return cls(deny=networks(scanning.deny), allow=networks(scanning.allow))

    def permits(self, address: str | Address) -> bool:
        """Whether certmon may connect to `address`; raises ValueError when it is not an IP address.

        An IPv6 zone id (`fe80::1%eth0`) is ignored, and an IPv4-mapped IPv6 address (`::ffff:169.254.169.254`)
        is judged as the IPv4 address it reaches.
        """
        addr = ip_address(address.split("%", 1)[0]) if isinstance(address, str) else address
        if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if any(addr in net for net in self.allow if net.version == addr.version):
            return True
        return not any(addr in net for net in self.deny if net.version == addr.version)
