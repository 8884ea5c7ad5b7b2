"""Where the process is in its life, and how many requests it is answering."""

from __future__ import annotations

import asyncio

__all__ = ["Lifecycle"]


class Lifecycle:
    """Draining once told to stop; the requests in the app's hands, counted.

    `serve` waits for them (`quiet`) before it lets aiohttp close the
    connections: aiohttp stops reading every connection as its shutdown
    begins, so a request whose body was still arriving (an upload, a PATCH)
    waited for bytes nobody read until the shutdown timeout cut it. The
    counting is `Frame`'s, two increments a request.
    """

    def __init__(self) -> None:
        self.draining = False
        self.in_flight = 0
        self._quiet: asyncio.Event | None = None

    def finished(self) -> None:
        """One request fewer in flight (called by `Frame` while draining)."""
        if self.in_flight == 0 and self._quiet is not None:
            self._quiet.set()

    async def quiet(self) -> None:
        """Return once no request is in flight (the caller bounds the wait)."""
        if self.in_flight == 0:
            return
        self._quiet = asyncio.Event()
        try:
            await self._quiet.wait()
        finally:
            self._quiet = None
