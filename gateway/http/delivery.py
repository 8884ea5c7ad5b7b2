"""`GET /images/{image_id}?token=…`: the delivery handlers, thin over `gateway.delivery`."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway.delivery import Renderer, Resolver
from gateway.errors import AmbiguousParameterError
from gateway.keys import ISSUER, RENDERER, RESOLVER

__all__ = ["Delivery", "etag_matches"]


def _token(request: web.Request) -> str | None:
    tokens = request.query.getall("token", ())
    if len(tokens) > 1:
        # Two tokens could be verified by one layer and used by another: refuse.
        raise AmbiguousParameterError("give exactly one token", parameter="token")
    return tokens[0] if tokens else None


class Delivery:
    """The `/images` handlers, bound on start-up to the resolver and renderer.

    Both are created on start-up and never replaced while the app runs, so
    they are bound once (`bound`, a cleanup context) rather than looked up
    through `request.app[...]` on every request.
    """

    _resolver: Resolver
    _renderer: Renderer

    async def bound(self, app: web.Application) -> AsyncIterator[None]:
        self._resolver, self._renderer = app[RESOLVER], app[RENDERER]
        yield
        del self._resolver, self._renderer

    async def redirect(self, request: web.Request) -> web.Response:
        """With Cloudinary: a 302 to the signed URL."""
        found = await self._resolver.redirect(
            _token(request), request.match_info["image_id"]
        )
        request[ISSUER] = found.issuer
        return web.Response(status=302, body=found.body, headers=found.headers)

    async def render(self, request: web.Request) -> web.Response:
        """Without Cloudinary: the image, rendered here."""
        renderer = self._renderer
        resolved = await self._resolver.resolve(
            _token(request), request.match_info["image_id"]
        )
        request[ISSUER] = resolved.token.issuer
        job = renderer.prepare(resolved, request.headers.get("Accept"))
        headers = renderer.headers(job)
        if etag_matches(request.headers.get("If-None-Match"), job.etag):
            return web.Response(status=304, headers=headers)
        rendered = await renderer.render(job)
        return web.Response(
            body=rendered.body, content_type=rendered.media_type, headers=headers
        )


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison against a list of tags, or `*`."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags
