"""Bounds on what clients hold: uploads in flight, and the time a body may take."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Final, TypeVar

from gateway.config import IngestSettings
from gateway.errors import OverloadedError, RequestTimeoutError, TooManyRequestsError

__all__ = ["MAX_BODY_BYTES", "UploadGate", "within_body_timeout"]

_T = TypeVar("_T")

# aiohttp's `client_max_size`, a backstop for a body read whole through it:
# JSON has its own, smaller bound (`jsonapi.MAX_JSON_BYTES`), and uploads
# stream to a file under theirs.
MAX_BODY_BYTES: Final = 1024 * 1024


class UploadGate:
    """Uploads in flight, per caller and in all; past either bound, refused at once.

    Counted from the first byte read to the answer: a slow or stalled upload
    holds its place until `GATEWAY_BODY_TIMEOUT` ends it.
    """

    def __init__(self, settings: IngestSettings) -> None:
        self._per_caller = settings.uploads_per_key
        self._in_all = settings.uploads_in_flight
        self._running: Counter[str] = Counter()

    @asynccontextmanager
    async def admitted(self, caller: str) -> AsyncIterator[None]:
        if self._running[caller] >= self._per_caller:
            raise TooManyRequestsError(
                f"at most {self._per_caller} uploads at once per API key",
                headers={"Retry-After": "1"},
            )
        if self._running.total() >= self._in_all:
            raise OverloadedError(
                "too many uploads in flight; retry shortly",
                headers={"Retry-After": "1"},
            )
        self._running[caller] += 1
        try:
            yield
        finally:
            self._running[caller] -= 1
            if not self._running[caller]:
                del self._running[caller]


async def within_body_timeout(seconds: float, receiving: Awaitable[_T]) -> _T:
    """`receiving` (reading a body), or 408 once `seconds` have passed."""
    try:
        async with asyncio.timeout(seconds):
            return await receiving
    except TimeoutError:
        raise RequestTimeoutError(
            f"the body did not arrive within {seconds:g} s", header="Content-Length"
        ) from None
