"""`GET /images/{image_id}?token=…`: the delivery handlers, thin over `gateway.delivery`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping

from aiohttp import hdrs, web

from gateway.catalog import ImageRecord
from gateway.delivery import Renderer, Resolver
from gateway.delivery.headers import entity_tags, redirect_body
from gateway.delivery.redirects import signed_url
from gateway.delivery.renderer import Job
from gateway.errors import AmbiguousParameterError
from gateway.keys import ISSUER, RENDERER, RESOLVER
from transforms import Transformation

__all__ = ["Delivery", "answer_job", "etag_matches", "redirect_to", "signed_location"]


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
        return await answer_job(request, renderer, job, renderer.headers(job))


async def answer_job(
    request: web.Request, renderer: Renderer, job: Job, headers: Mapping[str, str]
) -> web.Response:
    """A planned render's answer: 304 when the client holds its ETag, else the picture."""
    if etag_matches(request.headers.get(hdrs.IF_NONE_MATCH), job.etag):
        return web.Response(status=304, headers=headers)
    rendered = await renderer.render(job)
    return web.Response(
        body=rendered.body, content_type=rendered.media_type, headers=headers
    )


def signed_location(
    request: web.Request,
    image: ImageRecord,
    transformation: Transformation,
    extension: str,
) -> tuple[str, int | None]:
    """The CDN URL of a chain without the base chain (the paths without tokens),
    and when it stops opening (with a CDN token key), for their 302s and proxy."""
    cdn = request.app[RESOLVER].cdn
    if cdn is None:  # pragma: no cover - redirect mode always has a CDN
        raise RuntimeError("redirect delivery needs a CDN")
    expiration = cdn.expiration(None, time.time())
    location = signed_url(
        transformation,
        image,
        {},
        cdn=cdn,
        base_chain=(),
        expiration=expiration,
        extension=extension,
    )
    return location, expiration


def redirect_to(location: str, headers: Mapping[str, str]) -> web.Response:
    """A 302 with its small HTML body, as every delivery redirect has."""
    return web.Response(
        status=302,
        body=redirect_body(location),
        content_type="text/html",
        charset="utf-8",
        headers={**headers, "Location": location},
    )


def etag_matches(header: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison against a list of tags, or `*`."""
    if not header:
        return False
    tags = {tag.removeprefix("W/") for tag in entity_tags(header)}
    return "*" in tags or etag in tags
