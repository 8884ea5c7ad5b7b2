"""Application logs as JSON lines, each with the request id of the request it is about."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
import time
from typing import Final, Protocol, TextIO

__all__ = ["CURRENT_REQUEST_ID", "JsonFormatter", "Output", "Sink"]

# Fields a record may carry (`extra=`) that a machine reads, written when set:
# the start-up lines' `url` (the port a `--port 0` got).
_FIELDS: Final = ("url",)

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
    """Standard output whose reader may go away (`serve | head -1`, a log
    shipper stopped): serving goes on, the logs are dropped, and stderr says
    so once, where every line written after had been a traceback of its own."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._closed = False

    def write(self, text: str, /) -> int:
        if not self._closed:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
        return len(text)

    def flush(self) -> None:
        if not self._closed:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def _reader_gone(self) -> None:
        self._closed = True
        print(
            "image-gateway: standard output was closed (its reader went away);"
            " serving goes on, its log lines are dropped",
            file=sys.stderr,
            flush=True,
        )
        # What the stream still buffers is flushed again at exit: into
        # /dev/null, rather than a last traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        finally:
            os.close(devnull)
