"""The fixed response headers of delivery (seed 004's exact set), and the
reading of `Accept` and of entity-tag lists."""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape
from typing import Final

__all__ = [
    "NO_CACHE_HEADERS",
    "SECURITY_HEADERS",
    "entity_tags",
    "media_qualities",
    "redirect_body",
]

# Read of an Accept header: a browser's names a handful of media ranges with
# one parameter; 8 KB of commas took 5 ms of the event loop to read whole.
_MEDIA_RANGES: Final = 32
_RANGE_PARAMETERS: Final = 4
# Read of an If-None-Match or If-Match: a cache sends a handful of tags, a
# client one; 8 KB of commas took 0.5 ms to read whole.
_ENTITY_TAGS: Final = 32
# RFC 9110 §12.4.2: 0 to 1, at most three decimals.
_QVALUE: Final = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")

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


def entity_tags(header: str) -> list[str]:
    """The tags of an entity-tag list (RFC 9110 §13.1.1-2), `*` or `W/` kept
    as sent; the first `_ENTITY_TAGS` only."""
    return [tag.strip() for tag in header.split(",", _ENTITY_TAGS)[:_ENTITY_TAGS]]


def redirect_body(location: str) -> bytes:
    """The small HTML body of a 302, as the seed shows it."""
    return (
        f'<html><body>You are being <a href="{escape(location)}">redirected</a>.'
        "</body></html>"
    ).encode()


def media_qualities(accept: str | None) -> dict[str, float]:
    """The q of each media range `Accept` names (lower-cased; the highest
    where one is named twice), among its first `_MEDIA_RANGES` ranges and
    their first `_RANGE_PARAMETERS` parameters. A q that is no RFC 9110
    qvalue (`inf`, `1.5`, four decimals) counts as 0."""
    qualities: dict[str, float] = {}
    if not accept:
        return qualities
    for item in accept.split(",", _MEDIA_RANGES)[:_MEDIA_RANGES]:
        parts = item.split(";", _RANGE_PARAMETERS + 1)[: _RANGE_PARAMETERS + 1]
        media, *params = (part.strip() for part in parts)
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                value = value.strip()
                quality = float(value) if _QVALUE.fullmatch(value) else 0.0
        media = media.lower()
        qualities[media] = max(quality, qualities.get(media, 0.0))
    return qualities
