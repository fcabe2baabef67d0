"""The guard against server-side request forgery: only public addresses, unless allowed.

No traffic goes anywhere but 127.0.0.1 here: public addresses are only classified, and
the refusals are proven by a receiver on 127.0.0.1 that hears nothing.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from spapi_services.webhooks import (
    LOOPBACK_NETWORKS,
    AddressGuard,
    AttemptOutcome,
    EndpointAddressError,
    WebhookEndpoint,
    WebhookSecret,
    WebhookSender,
)
from spapi_services.webhooks._addresses import GuardedResolver

from .conftest import Receiver


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # the cloud's metadata service
        ("fe80::1", "link-local"),
        ("fd00::5", "private"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "not public"),  # carrier-grade NAT, shared address space
        ("::ffff:127.0.0.1", "loopback"),  # IPv4 wrapped in IPv6 is still IPv4
        ("::ffff:10.0.0.1", "private"),
    ],
)
def test_every_kind_of_internal_address_is_refused(address: str, why: str) -> None:
    assert AddressGuard().refusal(address) == why


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1111", "8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert AddressGuard().refusal(address) is None


def test_the_operator_allows_networks_by_name() -> None:
    guard = AddressGuard(["10.20.0.0/16", *LOOPBACK_NETWORKS])

    assert guard.refusal("10.20.3.4") is None
    assert guard.refusal("127.0.0.1") is None
    assert guard.refusal("::ffff:127.0.0.1") is None
    assert guard.refusal("::1") is None
    assert guard.refusal("10.21.0.1") == "private"
    assert guard.refusal("169.254.169.254") == "link-local"
    with pytest.raises(EndpointAddressError, match=r"10\.21\.0\.1 is private"):
        guard.check("db.internal", "10.21.0.1")


def test_a_malformed_network_is_refused_naming_its_place() -> None:
    with pytest.raises(ValueError, match=r"allow_networks\[1\]: 'ten' is not a network"):
        AddressGuard(["10.0.0.0/8", "ten"])
    assert AddressGuard("10.0.0.0/8").allowed == (ipaddress.ip_network("10.0.0.0/8"),)


class _FixedResolver(AbstractResolver):
    """Answers every name with the given addresses (as a DNS server could)."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=a,
                port=port,
                family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for a in self.addresses
        ]

    async def close(self) -> None:
        return None


async def test_the_resolver_leaves_out_refused_addresses_and_fails_when_none_is_left() -> None:
    mixed = GuardedResolver(AddressGuard(), _FixedResolver("10.0.0.7", "93.184.216.34"))
    internal = GuardedResolver(AddressGuard(), _FixedResolver("10.0.0.7", "169.254.169.254"))

    assert [r["host"] for r in await mixed.resolve("hooks.example")] == ["93.184.216.34"]
    with pytest.raises(EndpointAddressError) as caught:
        await internal.resolve("rebound.example")
    assert str(caught.value).startswith(
        "webhook endpoint rebound.example: refused (10.0.0.7 is private, "
        "169.254.169.254 is link-local)"
    )


async def test_a_literal_loopback_url_is_refused_without_connecting(receiver: Receiver) -> None:
    endpoint = WebhookEndpoint(url=receiver.url, secrets=WebhookSecret.generate())
    async with WebhookSender() as sender:
        result = await sender.attempt(endpoint, "msg_1", b"{}")

    assert result.outcome is AttemptOutcome.FAILED
    assert result.status is None
    assert result.error is not None
    assert "127.0.0.1 is loopback" in result.error
    assert "allow_networks" in result.error
    assert receiver.received == []


async def test_a_name_that_resolves_to_loopback_is_refused_at_connection(
    receiver: Receiver,
) -> None:
    port = receiver.base.rsplit(":", 1)[1]
    endpoint = WebhookEndpoint(
        url=f"http://localhost:{port}/hooks", secrets=WebhookSecret.generate()
    )
    async with WebhookSender() as sender:
        refused = await sender.attempt(endpoint, "msg_1", b"{}")
    async with WebhookSender(allow_networks=LOOPBACK_NETWORKS) as sender:
        allowed = await sender.attempt(endpoint, "msg_2", b"{}")

    assert refused.outcome is AttemptOutcome.FAILED
    assert refused.error is not None
    assert "webhook endpoint localhost: refused" in refused.error
    assert allowed.outcome is AttemptOutcome.DELIVERED
    assert [r.webhook_id for r in receiver.received] == ["msg_2"]
