"""The fixed response headers of delivery (seed 004's exact set)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Final

__all__ = ["NO_CACHE_HEADERS", "SECURITY_HEADERS", "redirect_body"]

SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "Access-Control-Allow-Origin": "*",
    "Vary": "Accept-Encoding",
    # The seed shows this value HTML-escaped (`&quot;`) because its page renders
    # headers inside <pre>; on the wire it carries plain quotes.
    "P3P": 'CP="NOI ADM DEV PSAi COM NAV OUR OTRo STP IND DEM"',
    "X-Content-Type-Options": "nosniff",
    "X-XSS-Protection": "1; mode=block",
    "X-Download-Options": "noopen",
    "X-Permitted-Cross-Domain-Policies": "none",
    "Referrer-Policy": "origin-when-cross-origin, strict-origin-when-cross-origin",
}

NO_CACHE_HEADERS: Final[Mapping[str, str]] = {
    "Cache-Control": "no-cache, no-store",
    "Pragma": "no-cache",
    "Expires": "Fri, 01 Jan 1990 00:00:00 GMT",
}


def redirect_body(location: str) -> bytes:
    """The small HTML body of a 302, as the seed shows it."""
    return (
        f'<html><body>You are being <a href="{escape(location)}">redirected</a>.'
        "</body></html>"
    ).encode()
