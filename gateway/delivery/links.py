"""Delivery URLs: the one place that knows how a token rides in a URL."""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence

from yarl import URL

from signing import Issuer, mint

__all__ = ["delivery_url", "root", "signed_delivery_url"]


def root(base_url: URL) -> str:
    """The public URL as the text every link's path follows (no trailing `/`)."""
    return str(base_url).rstrip("/")


def delivery_url(base_url: URL, image_id: str, token: str) -> str:
    """`{base}/images/{image_id}?token=…`, as frontends put it in `<img src>`.

    Written as text, not through yarl's joins (6 µs each, and a /v1 page of
    100 images writes 200 of these). A token is base64url and dots; an image
    id is quoted, a no-op for a catalog id (a UUID).
    """
    image = urllib.parse.quote(image_id, safe="")
    return f"{root(base_url)}/images/{image}?token={token}"


def signed_delivery_url(
    base_url: URL,
    issuer: Issuer,
    image_id: str,
    transformations: Sequence[object],
    *,
    ttl: int,
    audience: str | None = None,
) -> str | None:
    """A URL with a fresh token of the issuer's newest signing key; None without one.

    The token is bound to its image (`sub`): handed out for one image, it
    opens no other of the issuer's. It lives `ttl` seconds, or less where the
    issuer's policy (`--max-lifetime`) allows less: a longer token would be
    refused by the very gateway that handed it out.
    """
    key = issuer.signing_key
    if key is None:
        return None
    if (most := issuer.policy.max_lifetime) is not None:
        ttl = min(ttl, most)
    token = mint(
        key,
        issuer_id=issuer.id,
        transformations=list(transformations),
        ttl=ttl,
        subject=image_id,
        audience=audience,
    )
    return delivery_url(base_url, image_id, token)
