"""The playground (`serve --demo` only): its page, its two static files, its token desk.

The page builds a tiling or a crop of the demo images and shows, side by side,
the token's claims, the signed gateway URL, the Cloudinary chain it compiles
to and the picture. Tokens come from `POST /demo/token`, which signs only for
the demo issuer's images, through the same claims parser and resolver as
delivery. None of these routes exists without the demo.

The page runs under a strict Content-Security-Policy: no inline script or
style (its JavaScript and CSS are files), images only from the gateway and
the CDN its redirects point at.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import string
from importlib import resources
from typing import Final

from aiohttp import web
from yarl import URL

from gateway.config import Settings
from gateway.delivery.headers import SECURITY_HEADERS
from gateway.delivery.links import delivery_url
from gateway.delivery.resolver import Resolved
from gateway.demo import ORIGINAL_SIZE, THUMBNAIL, TTL, Demo, mode
from gateway.errors import (
    FieldInvalidError,
    FieldUnknownError,
    PayloadTooLargeError,
    RouteNotFoundError,
    UnsupportedMediaTypeError,
)
from gateway.http.jsonapi import json_body, media_type, pointer
from gateway.keys import DEMO, RESOLVER, SETTINGS
from signing import mint
from transforms import parse_base_chain, parse_transformations

__all__ = ["MAX_BODY_BYTES", "content_security_policy", "page", "static", "token"]

# A tiling of 8 overlays with every key set is under 2 KiB.
MAX_BODY_BYTES: Final = 8192
_BODY_KEYS: Final = frozenset({"image", "transformations"})
_TEMPLATE: Final = string.Template(
    (resources.files("gateway") / "http" / "static" / "playground.html").read_text()
)
_STATIC: Final = {
    name: (
        (resources.files("gateway") / "http" / "static" / name).read_bytes(),
        content_type,
    )
    for name, content_type in (
        ("playground.js", "text/javascript"),
        ("playground.css", "text/css"),
        # Linked by the page: a browser asks for /favicon.ico otherwise (a 404).
        ("favicon.svg", "image/svg+xml"),
    )
}


def content_security_policy(settings: Settings) -> str:
    """Scripts, styles and requests from the gateway only; pictures from it and its CDN."""
    gateway = _origin(settings.base_url)
    images = ["'self'", gateway]
    account = settings.upstream.cloudinary
    if settings.upstream.delivery == "redirect" and account is not None:
        # (The local stand-in, GATEWAY_CDN=local, is the gateway itself.)
        host = account.secure_distribution or (
            f"{account.cloud_name}-res.cloudinary.com"
            if account.private_cdn
            else "res.cloudinary.com"
        )
        images.append(f"https://{host}")
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {' '.join(dict.fromkeys(images))}",
            f"connect-src 'self' {gateway}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def _origin(url: URL) -> str:
    return str(url.origin())


def _demo(request: web.Request) -> Demo:
    if DEMO not in request.app:  # pragma: no cover - routed only with the demo
        raise RouteNotFoundError("the demo is not enabled (serve --demo)")
    return request.app[DEMO]


async def page(request: web.Request) -> web.Response:
    """`GET /demo`: the playground."""
    settings = request.app[SETTINGS]
    return web.Response(
        text=_page(_demo(request), settings),
        content_type="text/html",
        headers={
            **SECURITY_HEADERS,
            "Cache-Control": "no-store",
            "Content-Security-Policy": content_security_policy(settings),
        },
    )


async def static(request: web.Request) -> web.Response:
    """`GET /demo/static/{name}`: the playground's script and style sheet."""
    _demo(request)
    try:
        body, content_type = _STATIC[request.match_info["name"]]
    except KeyError:
        raise RouteNotFoundError("no such file") from None
    return web.Response(
        body=body,
        content_type=content_type,
        charset="utf-8",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


async def token(request: web.Request) -> web.Response:
    """`POST /demo/token`: sign a demo token and show what it becomes.

    Body: `{"image": id, "transformations": [...]}`, at most `MAX_BODY_BYTES`.
    Only the demo images may be named; the transformation goes through the
    claims parser and the resolver exactly as a delivery would.
    """
    demo = _demo(request)
    settings = request.app[SETTINGS]
    if media_type(request) != "application/json":
        # Also keeps other sites' plain form posts out: JSON needs a preflight.
        raise UnsupportedMediaTypeError("send application/json", header="Content-Type")
    length = request.content_length
    if length is None or length > MAX_BODY_BYTES:
        raise PayloadTooLargeError(
            f"send at most {MAX_BODY_BYTES} bytes, with Content-Length",
            header="Content-Length",
        )
    body = await json_body(request)
    if unknown := sorted(body.keys() - _BODY_KEYS):
        raise FieldUnknownError(
            f"unknown field {unknown[0]!r}",
            pointer=pointer(unknown[0]),
        )
    image = body.get("image")
    if not isinstance(image, str) or not demo.owns(image):
        raise FieldInvalidError("must be the id of a demo image", pointer="/image")
    # The claims parser first, as delivery runs it (pointers such as
    # /transformations/1/width), and only the demo's images as overlays.
    parsed = parse_transformations(body.get("transformations"), settings.limits)
    for layer, index in parsed.overlay_steps.items():
        if not demo.owns(layer):
            raise FieldInvalidError(
                "must be the id of a demo image",
                pointer=f"/transformations/{index}/overlay",
            )
    key = demo.issuer.signing_key
    if key is None:  # pragma: no cover - seed_demo gives the issuer a key
        raise RuntimeError("the demo issuer has no signing key")
    signed = mint(
        key,
        issuer_id=demo.issuer.id,
        transformations=body["transformations"],
        ttl=TTL,
        subject=image,
        audience=settings.tokens.audience,
    )
    # Then what delivery does with it: verify, find every image it names.
    resolver = request.app[RESOLVER]
    resolved = await resolver.resolve(signed, image)
    location = None
    if settings.upstream.delivery == "redirect":
        location = (await resolver.redirect(signed, image)).location
    return web.json_response(
        {
            "mode": _mode_name(settings),
            "claims": _claims(signed),
            "url": delivery_url(settings.base_url, image, signed),
            "chain": _chain(demo, resolved, settings),
            "cloudinaryUrl": location,
        },
        headers={"Cache-Control": "no-store"},
    )


def _claims(signed: str) -> object:
    """The payload of a token just minted here (so no verification to do)."""
    segment = signed.split(".")[1]
    try:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - minted above
        raise RuntimeError("unreadable token") from exc


def _chain(demo: Demo, resolved: Resolved, settings: Settings) -> str:
    """The Cloudinary chain the token compiles to; an image not uploaded (local
    rendering) counts as where it would be once uploaded."""
    # Loaded when first asked: local rendering otherwise never loads the SDK.
    from transforms.cloudinary.compile import to_cloudinary_chain

    return to_cloudinary_chain(
        resolved.transformation,
        overlays={
            layer: record.cloudinary or demo.asset(layer, settings)
            for layer, record in resolved.overlays.items()
        },
        base_chain=parse_base_chain(settings.upstream.base_chain),
    )


_CROPS: Final = (
    "fit",
    "scale",
    "limit",
    "fill",
    "lfill",
    "pad",
    "lpad",
    "crop",
    "thumb",
)
_GRAVITIES: Final = (
    "north_west", "north", "north_east", "west", "center", "east",
    "south_west", "south", "south_east",
)  # fmt: skip


def _mode_name(settings: Settings) -> str:
    upstream = settings.upstream
    if upstream.delivery == "render":
        return "render"
    return "cdn-local" if upstream.cdn == "local" else "redirect"


def _options(values: tuple[str, ...], selected: str, *, empty: bool = False) -> str:
    options = ['<option value="">(none)</option>'] if empty else []
    options.extend(
        f'<option value="{v}"{" selected" if v == selected else ""}>{v}</option>'
        for v in values
    )
    return "".join(options)


def _page(demo: Demo, settings: Settings) -> str:
    esc = html.escape
    pictures = "".join(
        f'<figure class="original" data-image="{esc(image.id)}" data-name="{esc(image.name)}">'
        f'<img src="{esc(demo.url(settings, image.id, list(THUMBNAIL)))}" alt="{esc(image.name)}" width="240" height="160">'
        f"<figcaption>{esc(image.name)}<br><code>{esc(image.id)}</code></figcaption></figure>"
        for image in demo.images
    )
    choices = "".join(
        f'<option value="{esc(image.id)}">{esc(image.name)}</option>'
        for image in demo.images
    )
    return _TEMPLATE.substitute(
        mode=esc(_mode_name(settings)),
        mode_text=esc(f"Mode: {mode(settings)}."),
        pictures=pictures,
        # Every demo original has this size: the page works out a tile's width.
        original_width=ORIGINAL_SIZE[0],
        original_height=ORIGINAL_SIZE[1],
        tile_crops=_options(("fit", "scale", "fill", "pad"), "fit"),
        tile_gravities=_options(("center", "west", "east"), "center"),
        choices=choices,
        crops=_options(_CROPS, "fill"),
        gravities=_options(_GRAVITIES, "", empty=True),
        effects=_options(("grayscale", "negate"), "", empty=True),
    )
