"""Connections bounded in number and in how slowly they may start.

aiohttp cuts an idle keep-alive connection (`keepalive_timeout`), but it
neither caps how many connections are open nor limits how long a client may
take to send a request's head: a few hundred clients sending a header byte a
minute would hold every file descriptor of the process. `ConnectionGuard`
wraps a protocol factory (aiohttp's, per connection) for `loop.create_server`:

- past `max_connections` open, a new connection is answered `503` with
  `Retry-After` and closed at once;
- a connection whose first request head (up to its blank line) has not
  arrived within `header_timeout` seconds is closed. Later requests on a
  kept-alive connection are bounded by aiohttp's idle timeout and the body
  timeout of the routes that read bodies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final, cast

__all__ = ["ConnectionGuard"]

_TOO_MANY: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n"
    b"Connection: close\r\n\r\n"
)
# A request head longer than this is aiohttp's to refuse; we stop looking.
_HEAD_BYTES: Final = 64 * 1024


class ConnectionGuard:
    """A protocol factory: aiohttp's protocols, each behind a `_Guarded`."""

    def __init__(
        self,
        factory: Callable[[], asyncio.Protocol],
        *,
        max_connections: int,
        header_timeout: float,
    ) -> None:
        self._factory = factory
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.open = 0

    def __call__(self) -> asyncio.Protocol:
        # Counted here, not when the connection is made: asyncio accepts a
        # burst of connections (queued while the loop was busy) by calling
        # the factory for each before any is made, and all of them passed a
        # count taken at `connection_made`.
        if self.open >= self.max_connections:
            return _Refused()
        self.open += 1
        return _Guarded(self, self._factory())


class _Refused(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP transport writes (uvloop's do not subclass asyncio's classes).
        cast(asyncio.WriteTransport, transport).write(_TOO_MANY)
        transport.close()


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, counted and timed until its first head."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.BaseTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._head = b""
        self._seen = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._timer = asyncio.get_running_loop().call_later(
            self._guard.header_timeout, self._too_slow
        )
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            # Keep the last three bytes: the blank line may span two reads.
            self._head = self._head[-3:] + data
            self._seen += len(data)
            if b"\r\n\r\n" in self._head or self._seen > _HEAD_BYTES:
                self._timer.cancel()
                self._timer = None
                self._head = b""
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard.open -= 1
        if self._timer is not None:
            self._timer.cancel()
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def _too_slow(self) -> None:
        self._timer = None
        if self._transport is not None:
            self._transport.close()
