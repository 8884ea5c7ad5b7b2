"""Application logs as JSON lines, each with the request id of the request it is about."""

from __future__ import annotations

import contextvars
import json
import logging
import time
from typing import Final

__all__ = ["CURRENT_REQUEST_ID", "JsonFormatter"]

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
