"""aiohttp's per-connection protocol, its own answers made like the app's.

A request aiohttp's parser refuses (a request line over its limit, a control
byte in the target, a malformed header) never reaches the application or its
middleware: aiohttp answers it from `RequestHandler.handle_error`, in plain
text that quotes the input back, without a request id. `JsonApiRequestHandler`
answers those as every other error is answered: a JSON:API error object whose
id is the response's `X-Request-Id`, and nothing of the input.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMethod,
    HttpProcessingError,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
    PayloadEncodingError,
)

from gateway.errors import ApiError, BadRequestError, InternalError, error_response
from gateway.http.middlewares import SERVER, new_request_id
from gateway.ops.logs import CURRENT_REQUEST_ID

__all__ = ["JsonApiRequestHandler"]

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
        response = error_response(_error(status, exc), error_id=error_id)
        response.headers["X-Request-Id"] = error_id
        response.headers["Server"] = SERVER
        response.force_close()
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
