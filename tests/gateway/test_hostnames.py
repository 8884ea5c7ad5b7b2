"""Which hosts are IPv4 addresses, and in which spelling one is taken."""

from __future__ import annotations

import ipaddress

import pytest

from gateway.hostnames import ipv4_spelled


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("example.com", None),
        ("xn--bcher-kva.example", None),
        ("1.2.3.example", None),
        ("0x7f.example", None),
    ],
)
def test_a_name_or_an_address_in_its_one_spelling(
    host: str, address: str | None
) -> None:
    expected = None if address is None else ipaddress.IPv4Address(address)
    assert ipv4_spelled(host) == expected


@pytest.mark.parametrize(
    "host", ["127.1", "2130706433", "0x7f.0.0.1", "0177.0.0.1", "1.2.3.04", "a.00", "9"]
)
def test_an_address_in_another_spelling_is_refused(host: str) -> None:
    """Each ends in a number: a resolver connects to some address for it."""
    with pytest.raises(ValueError, match=r"octets|digits|characters|zeros"):
        ipv4_spelled(host)
