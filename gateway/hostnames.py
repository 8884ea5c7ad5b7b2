"""Which host names are IPv4 addresses, as every resolver reads them.

WHATWG's "ends in a number": a host whose last label is decimal or 0x-hex is
an IPv4 address however it is spelled (2130706433, 0x7f.1, 0177.0.0.1,
127.1); getaddrinfo's inet_aton maps every such spelling onto an address.
The origin fetch guard and the ingest allow-list both take only the one
spelling an address has (a.b.c.d), so that what is checked is what is
connected to.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

__all__ = ["ipv4_spelled"]

_NUMERIC_LABEL: Final = re.compile(r"0x[0-9a-f]*|[0-9]+", re.IGNORECASE)


def ipv4_spelled(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a host ending in a number names; None for a DNS name.

    `ValueError` for a host that ends in a number but is not four decimal
    numbers without leading zeros: some address, in a spelling refused here.
    """
    last = host.removesuffix(".").rpartition(".")[2]
    if not _NUMERIC_LABEL.fullmatch(last):
        return None
    return ipaddress.IPv4Address(host)  # refuses leading zeros and short forms
