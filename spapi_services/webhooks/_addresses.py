"""Which addresses webhooks may be sent to: public ones, and the networks the operator allows.

A webhook URL is given by whoever configures an endpoint, and the sender runs inside the
operator's network.  Left unguarded, an endpoint of ``http://169.254.169.254/…`` or
``http://10.0.0.5:6379/`` would turn the sender into a way to reach the cloud's metadata
service or an internal database (server-side request forgery).  So every address a
delivery would connect to is checked, after DNS resolution and at the moment of
connecting (a name that resolved to a public address when the endpoint was set may
resolve to a private one later): private, loopback, link-local, shared, multicast,
reserved and unspecified addresses are refused unless the operator lists their network
in ``allow_networks`` (tests on 127.0.0.1 list ``127.0.0.0/8``).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import TypeAlias

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

__all__ = ["LOOPBACK_NETWORKS", "AddressGuard", "EndpointAddressError", "NetworkLike"]

Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
#: A network as ``allow_networks`` takes it: ``"10.1.0.0/16"``, ``"::1"``, or an
#: ``ipaddress`` network.
NetworkLike: TypeAlias = str | ipaddress.IPv4Network | ipaddress.IPv6Network

#: This machine's own addresses, for a receiver on the same host (tests, a local relay).
LOOPBACK_NETWORKS: tuple[str, ...] = ("127.0.0.0/8", "::1/128")


class EndpointAddressError(OSError):
    """A webhook endpoint resolves only to addresses the sender may not reach.

    Names the host and why each address was refused (private, loopback, …); allow the
    network with ``allow_networks`` if the receiver is meant to be there.
    """


class AddressGuard:
    """Decides whether a delivery may connect to an address.

    :param allow_networks: networks to allow although they are not public (for example
        ``LOOPBACK_NETWORKS``, or ``["10.20.0.0/16"]`` for receivers inside your own
        network).  Everything public is allowed.
    """

    __slots__ = ("allowed",)

    def __init__(self, allow_networks: Iterable[NetworkLike] = ()) -> None:
        if isinstance(allow_networks, str):
            allow_networks = [allow_networks]
        #: The networks allowed although private, loopback or link-local.
        self.allowed: tuple[Network, ...] = tuple(
            _network(item, index) for index, item in enumerate(allow_networks)
        )

    def __repr__(self) -> str:
        return f"AddressGuard(allow_networks={[str(n) for n in self.allowed]!r})"

    def refusal(self, address: str | Address) -> str | None:
        """Why ``address`` is refused (``"private"``, ``"loopback"``, …), or ``None``."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        # ::ffff:10.0.0.1 reaches 10.0.0.1: judge the IPv4 address it carries.
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.allowed if network.version == ip.version):
            return None
        return _kind(ip)

    def check(self, host: str, address: str | Address) -> None:
        """Raise :class:`EndpointAddressError` if ``address`` (of ``host``) is refused."""
        why = self.refusal(address)
        if why is not None:
            raise EndpointAddressError(_message(host, [(str(address), why)]))

    def resolver(self) -> GuardedResolver:
        """An aiohttp resolver that leaves out the addresses this guard refuses."""
        return GuardedResolver(self)


def literal_address(host: str) -> Address | None:
    """The address a URL's host is, if it is an IP literal (``[::1]`` included)."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _kind(ip: Address) -> str | None:
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    )
    for name, applies in checks:
        if applies:
            return name
    # What is left and still not global: shared address space (100.64.0.0/10) and the like.
    return None if ip.is_global else "not public"


def _network(item: NetworkLike, index: int) -> Network:
    if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return item
    try:
        return ipaddress.ip_network(str(item).strip(), strict=False)
    except ValueError:
        raise ValueError(
            f"allow_networks[{index}]: {item!r} is not a network (write it as 10.1.0.0/16 "
            "or an address)"
        ) from None


def _message(host: str, refused: list[tuple[str, str]]) -> str:
    reasons = ", ".join(f"{address} is {why}" for address, why in refused)
    return (
        f"webhook endpoint {host}: refused ({reasons}); "
        "allow the network with allow_networks if the receiver is meant to be there"
    )


class GuardedResolver(AbstractResolver):
    """aiohttp's default resolver, with the addresses a guard refuses left out.

    Checking here, when aiohttp connects, means the address checked is the address
    connected to: a DNS answer that changes between a check and the connection cannot
    slip a private address through.
    """

    def __init__(self, guard: AddressGuard, resolver: AbstractResolver | None = None) -> None:
        self._guard = guard
        self._resolver = resolver if resolver is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        kept: list[ResolveResult] = []
        refused: list[tuple[str, str]] = []
        for result in results:
            why = self._guard.refusal(result["host"])
            if why is None:
                kept.append(result)
            else:
                refused.append((result["host"], why))
        if not kept:
            raise EndpointAddressError(_message(host, refused))
        return kept

    async def close(self) -> None:
        await self._resolver.close()
