"""Application logs as JSON lines, each with the request id of the request it is about."""

from __future__ import annotations

import contextlib
import contextvars
import errno
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Final, Protocol, TextIO

__all__ = ["CURRENT_REQUEST_ID", "JsonFormatter", "Output", "Sink"]

# Fields a record may carry (`extra=`) that a machine reads, written when set:
# the start-up lines' `url` (the port a `--port 0` got).
_FIELDS: Final = ("url",)
# Standard output's reader is gone for good: a pipe's, a socket's, a terminal's.
_GONE: Final = frozenset({errno.EPIPE, errno.ECONNRESET, errno.EIO})

# Set by the request-id middleware: a log line written while a request is
# handled names it, so the line and the client's error object join up.
CURRENT_REQUEST_ID: Final = contextvars.ContextVar[str | None](
    "request_id", default=None
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        doc: dict[str, object] = {
            "time": f"{created}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _FIELDS:
            if (value := getattr(record, name, None)) is not None:
                doc[name] = value
        if (request_id := CURRENT_REQUEST_ID.get()) is not None:
            doc["request_id"] = request_id
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc)


class Sink(Protocol):
    """Where log lines go: standard output, or a test's buffer."""

    def write(self, text: str, /) -> object: ...
    def flush(self) -> object: ...


class Output:
    """Standard output whose reader may go away (`serve | head`, a log shipper
    stopped): serving goes on, the lines are dropped, and stderr says so once,
    where every line written after had been a traceback of its own.

    A reader gone for good (EPIPE, ECONNRESET, EIO) closes it; any other
    failure (a full disk, a non-blocking pipe that is full) drops the lines
    while it lasts, said once each time it starts.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._gone = False
        self._failing = False
        # The access log and the announcement write from the loop's thread,
        # logging from the render threads too.
        self._lock = threading.Lock()

    def write(self, text: str, /) -> int:
        with self._lock:
            if not self._gone:
                self._tried(self._stream.write, text)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if not self._gone and self._tried(self._stream.flush):
                self._failing = False  # written through: said again if it fails again

    def _tried(self, call: Callable[..., object], *args: object) -> bool:
        try:
            call(*args)
        except OSError as exc:
            if exc.errno in _GONE:
                self._gone = True
                # What the stream still buffers is flushed again at exit:
                # into /dev/null, rather than a last traceback. Before saying
                # so: stderr may be the same dead pipe (`serve 2>&1 | head`).
                with contextlib.suppress(OSError):
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    try:
                        os.dup2(devnull, self._stream.fileno())
                    finally:
                        os.close(devnull)
                _say(
                    "standard output was closed (its reader went away);"
                    " serving goes on, its log lines are dropped"
                )
            elif not self._failing:
                self._failing = True
                _say(
                    f"standard output failed ({exc.strerror or exc});"
                    " log lines are dropped while it does"
                )
            return False
        return True


def _say(message: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, f"image-gateway: {message}\n".encode())
