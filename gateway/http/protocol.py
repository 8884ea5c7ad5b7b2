"""aiohttp's per-connection protocol, its own answers made like the app's.

A request aiohttp's parser refuses (a request line over its limit, a control
byte in the target, a malformed header) never reaches the application or its
middleware: aiohttp answers it from `RequestHandler.handle_error`, in plain
text that quotes the input back, without a request id. `JsonApiRequestHandler`
answers those as every other error is answered: a JSON:API error object whose
id is the response's `X-Request-Id`, and nothing of the input.

`routed_within_bounds` refuses, before aiohttp's router looks at it, a path deeper than any
route: the router tries every prefix of a path, copying it each time, and a
request line may be 50 KB (room for an over-long token to get its own 400) —
49,000 slashes took 320 ms of the event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import HttpVersion11, web
from aiohttp.http_exceptions import (
    BadHttpMethod,
    HttpProcessingError,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
    PayloadEncodingError,
)

from gateway.errors import (
    ApiError,
    BadRequestError,
    ExpectationFailedError,
    InternalError,
    RouteNotFoundError,
    error_response,
)
from gateway.http.middlewares import SERVER, new_request_id
from gateway.ops.logs import CURRENT_REQUEST_ID

__all__ = ["MAX_PATH_SEGMENTS", "JsonApiRequestHandler", "routed_within_bounds"]

_Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

# Far more segments than any route has (the deepest, a local CDN URL, has
# about two a transformation step: some 40 at the default 16 steps): such a
# path is no endpoint, answered without routing it.
MAX_PATH_SEGMENTS: Final = 256


def routed_within_bounds(routed: _Handler) -> _Handler:
    """`routed` (aiohttp's `Server.request_handler`: the app's router), behind
    a refusal of paths deeper than any route.

    Not a coroutine of its own: it hands back the router's, and a layer of
    coroutine would cost a cached redirect 1.5 µs. A refused request never
    reaches the app: like the parser's refusals, it gets an id of its own and
    no `X-Runtime`.
    """

    def handle(request: web.BaseRequest) -> Awaitable[web.StreamResponse]:
        # A target of this many characters or fewer holds no more segments.
        if len(target := request.raw_path) > MAX_PATH_SEGMENTS and _too_deep(target):
            return _refused(RouteNotFoundError("no endpoint at this path"))
        if (
            # Empty, as aiohttp reads it, is none.
            (expect := request.headers.get("Expect"))
            and request.version >= HttpVersion11
            and expect.lower() != "100-continue"
        ):
            # aiohttp answers it before any middleware, in plain text.
            return _refused(ExpectationFailedError("only 100-continue is met"))
        return routed(request)

    return handle


# What a client is told, by the parser's error class (the nearest in its MRO).
_DETAILS: Final[dict[type[HttpProcessingError], str]] = {
    LineTooLong: "the request line or a header is longer than this server accepts",
    InvalidURLError: "the request target is not a valid URL",
    BadHttpMethod: "the request method is not a valid HTTP method",
    InvalidHeader: "a request header is malformed",
    PayloadEncodingError: "the request body's framing or encoding is malformed",
}
_NOT_HTTP: Final = "the request is not valid HTTP/1.1"


class JsonApiRequestHandler(web.RequestHandler):
    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        error_id = new_request_id()
        CURRENT_REQUEST_ID.set(error_id)  # its log line names the answer's id
        # aiohttp's own: it logs (`ParserErrorsInOneLine` keeps that to one
        # line), and raises if a response has begun. Its text answer is dropped.
        super().handle_error(request, status, exc, message)
        response = _answer(_error(status, exc), error_id)
        response.force_close()
        return response


async def _refused(error: ApiError) -> web.StreamResponse:
    return _answer(error)


def _too_deep(target: str) -> bool:
    query = target.find("?")
    return target.count("/", 0, len(target) if query < 0 else query) > MAX_PATH_SEGMENTS


def _answer(error: ApiError, error_id: str | None = None) -> web.Response:
    """`error` as the app would answer it, for a request the app never saw."""
    if error_id is None:
        error_id = new_request_id()
        CURRENT_REQUEST_ID.set(error_id)
    response = error_response(error, error_id=error_id)
    response.headers["X-Request-Id"] = error_id
    response.headers["Server"] = SERVER
    return response


def _error(status: int, exc: BaseException | None) -> ApiError:
    if status >= 500:
        # Only an error that escaped the app's own middleware comes here.
        return InternalError("an unexpected error occurred; quote the error id")
    if isinstance(exc, HttpProcessingError):
        for cls in type(exc).__mro__:
            if (detail := _DETAILS.get(cls)) is not None:
                return BadRequestError(detail)
    return BadRequestError(_NOT_HTTP)
