"""The one route table, each handler composed with the app's middlewares once.

aiohttp can run an app's middlewares itself, but it composes them on every
request: a chain looked up in a cache keyed by handler and app stack, an ABC
`isinstance` check, and a layer of its own that sets `current_app` for
sub-applications (we have none). Measured with aiohttp's protocol fed raw
requests, that costs 2.6 µs of a cached 302's 34 µs, as much as our two
middlewares' own work. So `create_app` lists the middlewares in
`app[MIDDLEWARES]` (request-id, then errors) and `add_routes` wraps each handler
in them here, at setup: the same functions, in the same order, called the way
aiohttp calls them (`partial(middleware, handler=inner)`).

What aiohttp would answer by itself goes through our middlewares too, because
it is a route here, raising what aiohttp would raise: a wrong method reaches a
`*` route on the same path (405), an unknown path a catch-all resource (404).
The errors middleware maps them as it maps every aiohttp error. Only a
CONNECT, whose target has no path, is answered by aiohttp before any route is
tried (its plain 404, as a malformed request line gets its plain 400).
`check_routes` refuses to start an app with a route added around `add_routes`,
which would answer without a request id or JSON:API errors.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from gateway import api, handlers
from gateway.keys import MIDDLEWARES, SETTINGS

__all__ = ["add_routes", "check_routes", "setup_routes"]


def setup_routes(app: web.Application, delivery: handlers.Delivery) -> None:
    # One delivery mode per process, chosen once: no per-request branch.
    deliver = (
        delivery.redirect if app[SETTINGS].delivery == "redirect" else delivery.render
    )
    # web.get also answers HEAD with the same headers and no body.
    add_routes(
        app,
        [
            web.get("/images/{image_id}", deliver, name="deliver"),
            web.get("/status", handlers.status, name="status"),
            web.get("/openapi.json", handlers.openapi, name="openapi"),
            web.get("/demo", handlers.demo, name="demo"),
            web.post("/v1/images", api.create_image, name="create_image"),
            web.put("/v1/images", api.create_image, name="put_image"),
            web.get("/v1/images", api.list_images, name="list_images"),
            web.get("/v1/images/{image_id}", api.get_image, name="get_image"),
            web.patch("/v1/images/{image_id}", api.patch_image, name="patch_image"),
            web.delete("/v1/images/{image_id}", api.delete_image, name="delete_image"),
        ],
    )
    # Last, so that every real route of any path is tried before it.
    anywhere = _EveryPath()
    app.router.register_resource(anywhere)
    anywhere.add_route(hdrs.METH_ANY, _wrapped(app, _not_found))


def add_routes(app: web.Application, table: Iterable[web.RouteDef]) -> None:
    """Add routes, each inside the app's middlewares, and a 405 for other methods.

    A path's 405 route is added after its real ones: aiohttp tries the resources
    of one path in the order they were added.
    """
    methods: defaultdict[str, set[str]] = defaultdict(set)
    for route in table:
        handler = _wrapped(app, route.handler)
        for added in web.RouteDef(
            route.method, route.path, handler, route.kwargs
        ).register(app.router):
            methods[route.path].update(r.method for r in added.resource or ())
    for path, allowed in methods.items():
        app.router.add_route(
            hdrs.METH_ANY, path, _wrapped(app, _not_allowed(sorted(allowed)))
        )


async def check_routes(app: web.Application) -> AsyncIterator[None]:
    """Refuse to start when a route would bypass the middlewares (a cleanup context)."""
    outermost = app[MIDDLEWARES][0]
    for route in app.router.routes():
        handler = route.handler
        if not (isinstance(handler, functools.partial) and handler.func is outermost):
            raise RuntimeError(
                f"{route.method} {route.resource and route.resource.canonical} was "
                "not added with gateway.routes.add_routes: it would bypass the "
                "middlewares"
            )
    yield


class _EveryPath(web.PlainResource):
    """Every request target, `*` (`OPTIONS *`) and `host:port` included.

    A `/{path:.*}` route cannot match those: they would get aiohttp's own plain
    404, without a request id. As `/`, aiohttp tries this resource last for
    every path.
    """

    def __init__(self) -> None:
        super().__init__("/")

    def raw_match(self, path: str) -> bool:
        return False  # never to be reused for a route added at `/`

    def _match(self, path: str) -> dict[str, str] | None:
        return {}


def _wrapped(app: web.Application, handler: Handler) -> Handler:
    middlewares = app[MIDDLEWARES]
    for middleware in reversed(middlewares):
        handler = functools.partial(middleware, handler=handler)
    return handler


def _not_allowed(allowed: list[str]) -> Handler:
    async def not_allowed(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMethodNotAllowed(request.method, allowed)

    return not_allowed


async def _not_found(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotFound()
