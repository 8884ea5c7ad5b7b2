"""Request handlers: thin, they parse the request and call the delivery service."""

from __future__ import annotations

import json
from importlib import resources
from typing import Final

from aiohttp import web

from gateway.errors import JSONAPI, AmbiguousParameterError
from gateway.keys import CATALOG, DELIVERER, SETTINGS

__all__ = ["deliver", "openapi", "status"]

_OPENAPI: Final = (resources.files("gateway") / "openapi.json").read_bytes()


def _token(request: web.Request) -> str | None:
    tokens = request.query.getall("token", ())
    if len(tokens) > 1:
        # Two tokens could be verified by one layer and used by another: refuse.
        raise AmbiguousParameterError("give exactly one token", parameter="token")
    return tokens[0] if tokens else None


async def deliver(request: web.Request) -> web.StreamResponse:
    """`GET /images/{image_id}?token=…`: a 302 to the signed Cloudinary URL."""
    redirect = request.app[DELIVERER].redirect(
        _token(request), request.match_info["image_id"]
    )
    return web.Response(status=302, body=redirect.body, headers=redirect.headers)


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
