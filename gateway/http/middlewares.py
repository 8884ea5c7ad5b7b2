"""Request ids, timing and counts on every response; every error rendered as JSON:API."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import time
import uuid
from typing import Final

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler

from gateway.errors import (
    ApiError,
    BadRequestError,
    InternalError,
    MethodNotAllowedError,
    PayloadTooLargeError,
    RouteNotFoundError,
    TooManyParametersError,
    error_response,
)
from gateway.keys import ERROR_HEADERS, REQUEST_ID
from gateway.ops.access_log import holds_credential
from gateway.ops.lifecycle import Lifecycle
from gateway.ops.logs import CURRENT_REQUEST_ID
from gateway.ops.metrics import Metrics
from signing import SigningError
from transforms import TransformError

__all__ = [
    "MAX_QUERY_PARAMETERS",
    "SERVER",
    "Frame",
    "ParserErrorsInOneLine",
    "new_request_id",
]

log = logging.getLogger("gateway")

# A caller's own request id is kept when it is plainly an id (a proxy's, a
# client's), so logs join up; anything else is replaced, never echoed.
_CLIENT_ID: Final = re.compile(r"[A-Za-z0-9._:-]{8,128}")
SERVER: Final = "image-gateway"
# A handler that reads the query has it parsed whole, about a microsecond a
# parameter: a request line may be 50 KB long (room for an over-long token to
# get its own 400), and 12,000 `a=b&` pairs cost 8 ms of the event loop. No
# route takes more than a handful.
MAX_QUERY_PARAMETERS: Final = 64
# Shorter targets cannot hold that many parameters' separators worth counting.
_COUNTED_TARGET: Final = 2 * MAX_QUERY_PARAMETERS


# Ids are UUID-shaped: a random per-process prefix (74 random bits) and a
# counter. Unique across processes and restarts, and far cheaper than uuid4()
# on the hot path; an id needs to be unique, not unpredictable. A forked
# process (a worker) draws a prefix of its own, never its parent's.
_prefix = ""
_counter = itertools.count(1)


def _new_prefix() -> None:
    global _prefix, _counter
    _prefix = str(uuid.uuid4())[:24]
    _counter = itertools.count(1)


_new_prefix()
os.register_at_fork(after_in_child=_new_prefix)


def new_request_id() -> str:
    return f"{_prefix}{next(_counter) & 0xFFFFFFFFFFFF:012x}"


class Frame:
    """The one middleware: every response's request id, timing and count, and
    every error rendered as JSON:API.

    One layer rather than two (a request-id middleware around an error
    middleware): aiohttp runs each middleware as a partial and a coroutine of
    its own, and on a cached redirect a layer costs as much as the handler.
    The metrics are bound here once, not looked up through `request.app` on
    every request.
    """

    __middleware_version__: Final = 1  # what `@web.middleware` marks

    def __init__(self, metrics: Metrics, lifecycle: Lifecycle) -> None:
        self._metrics = metrics
        self._lifecycle = lifecycle

    async def __call__(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        started = time.perf_counter()
        incoming = request.headers.get("X-Request-Id")
        rid = (
            incoming
            if incoming is not None
            and _CLIENT_ID.fullmatch(incoming)
            # An id is logged and echoed: a credential sent as one (a
            # misconfigured client's key) must be neither.
            and not holds_credential(incoming)
            else new_request_id()
        )
        request[REQUEST_ID] = rid
        CURRENT_REQUEST_ID.set(rid)
        # Counted while in the app's hands, so that a shutdown waits for it
        # with its connection still read (`Lifecycle.quiet`).
        lifecycle = self._lifecycle
        lifecycle.in_flight += 1
        try:
            if len(target := request.raw_path) > _COUNTED_TARGET:
                _check_parameters(target)
            response = await handler(request)
        except (ApiError, SigningError, TransformError) as exc:
            response = self._refused(exc, rid)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = self._refused(_from_http(exc), rid)
        except asyncio.CancelledError:
            if lifecycle.draining:
                # A handler cut at GATEWAY_SHUTDOWN_TIMEOUT: no answer, so no
                # access-log line; this line says it was cut. (An answer cut
                # while aiohttp writes it is past this frame, and unlogged; a
                # client gone cancels nothing as `serve` runs aiohttp.)
                log.warning(
                    "cut by the shutdown after %.3f s: %s %s, unanswered",
                    time.perf_counter() - started,
                    request.method,
                    request.match_info.route.name or "unmatched",
                )
            raise
        except Exception:
            log.exception("unhandled error (request id %s)", rid)
            response = error_response(
                InternalError("an unexpected error occurred; quote the error id"),
                error_id=rid,
            )
        finally:
            lifecycle.in_flight -= 1
            if lifecycle.draining:
                lifecycle.finished()
        if response.status >= 400 and ERROR_HEADERS in request:
            response.headers.update(request[ERROR_HEADERS])
        if lifecycle.draining:
            # No next request on this connection: the client goes elsewhere.
            response.force_close()
        elapsed = time.perf_counter() - started
        # aiohttp would name itself, its version and Python's in `Server`: no
        # map for an attacker.
        headers = response.headers
        headers["X-Request-Id"] = rid
        headers["X-Runtime"] = f"{elapsed:.6f}"
        headers["Server"] = SERVER
        self._metrics.observe(
            request.match_info.route.name or "unmatched", response.status, elapsed
        )
        return response

    def _refused(
        self, error: ApiError | SigningError | TransformError, rid: str
    ) -> web.Response:
        self._metrics.refusals[error.code] += 1
        return error_response(error, error_id=rid)


def _check_parameters(target: str) -> None:
    """Refuse a query of more than `MAX_QUERY_PARAMETERS` parameters, before
    any handler parses it (as yarl counts them: by their `&`)."""
    query = target.find("?")
    if query >= 0 and (separators := target.count("&", query)) >= MAX_QUERY_PARAMETERS:
        raise TooManyParametersError(
            f"the query has {separators + 1} parameters; "
            f"at most {MAX_QUERY_PARAMETERS} are accepted"
        )


def _from_http(exc: web.HTTPException) -> ApiError:
    """aiohttp's own errors (no route, wrong method, body too large) in our tree."""
    match exc:
        case web.HTTPNotFound():
            return RouteNotFoundError("no endpoint at this path")
        case web.HTTPMethodNotAllowed():
            allow = ", ".join(sorted(exc.allowed_methods))
            return MethodNotAllowedError(
                f"allowed methods: {allow}", headers={"Allow": allow}
            )
        case web.HTTPRequestEntityTooLarge():
            return PayloadTooLargeError("the request body is too large")
        case _ if exc.status < 500:
            return BadRequestError(exc.reason)
        case _:
            return InternalError("an unexpected error occurred; quote the error id")


class ParserErrorsInOneLine(logging.Filter):
    """aiohttp's log of a request its parser refused, as one line without input.

    aiohttp logs each such request (a request line over its limit, bytes that
    are no HTTP) with a full traceback that quotes the input: a flood of them
    would flood the log, and carry what a client sent into it. `serve` adds
    this filter to aiohttp's `aiohttp.server` logger.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], HttpProcessingError):
            refused = record.exc_info[1]
            # The client's fault, not the server's: no ERROR to page anyone
            # (and what aiohttp logs lower, a TLS hello at DEBUG, stays there).
            if record.levelno > logging.WARNING:
                record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "refused a request aiohttp could not parse: %s (%s)"
            record.args = (type(refused).__name__, refused.code)
            record.exc_info = None
            record.exc_text = None
        return True
