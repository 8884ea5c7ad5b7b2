"""Request handlers: thin, they parse the request and call the delivery service."""

from __future__ import annotations

import json
from importlib import resources
from typing import Final

from aiohttp import web

from gateway.errors import JSONAPI, AmbiguousParameterError, RouteNotFoundError
from gateway.headers import SECURITY_HEADERS
from gateway.keys import CATALOG, DELIVERER, DEMO, RENDERER, SETTINGS

__all__ = ["demo", "openapi", "redirect", "render", "status"]

_OPENAPI: Final = (resources.files("gateway") / "openapi.json").read_bytes()


def _token(request: web.Request) -> str | None:
    tokens = request.query.getall("token", ())
    if len(tokens) > 1:
        # Two tokens could be verified by one layer and used by another: refuse.
        raise AmbiguousParameterError("give exactly one token", parameter="token")
    return tokens[0] if tokens else None


async def redirect(request: web.Request) -> web.Response:
    """`GET /images/{image_id}?token=…` with Cloudinary: a 302 to the signed URL."""
    token, image_id = _token(request), request.match_info["image_id"]
    found = request.app[DELIVERER].redirect(token, image_id)
    return web.Response(status=302, body=found.body, headers=found.headers)


async def render(request: web.Request) -> web.Response:
    """`GET /images/{image_id}?token=…` without Cloudinary: the image, rendered here."""
    app = request.app
    renderer = app[RENDERER]
    resolved = app[DELIVERER].resolve(_token(request), request.match_info["image_id"])
    job = renderer.prepare(resolved, request.headers.get("Accept"))
    headers = renderer.headers(job)
    if _matches(request.headers.get("If-None-Match"), job.etag):
        return web.Response(status=304, headers=headers)
    rendered = await renderer.render(job)
    return web.Response(
        body=rendered.body, content_type=rendered.media_type, headers=headers
    )


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison against a list of tags, or `*`."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


async def demo(request: web.Request) -> web.Response:
    """`GET /demo`: a page of signed demo URLs (only with `serve --demo`)."""
    if DEMO not in request.app:
        raise RouteNotFoundError("the demo is not enabled (serve --demo)")
    page = request.app[DEMO].page(request.app[SETTINGS])
    return web.Response(
        text=page,
        content_type="text/html",
        headers={**SECURITY_HEADERS, "Cache-Control": "no-store"},
    )


async def status(request: web.Request) -> web.Response:
    """`GET /status`: liveness plus a catalog round trip."""
    settings = request.app[SETTINGS]
    revision = request.app[CATALOG].revision()
    body = {
        "data": {
            "type": "status",
            "id": "gateway",
            "attributes": {
                "status": "ok",
                "delivery": settings.delivery,
                "catalogRevision": list(revision),
            },
        }
    }
    return web.Response(
        body=json.dumps(body).encode(),
        content_type=JSONAPI,
        headers={"Cache-Control": "no-store"},
    )


async def openapi(request: web.Request) -> web.Response:
    """`GET /openapi.json`: the API description, kept in step with the routes by a test."""
    return web.Response(body=_OPENAPI, content_type="application/json")
