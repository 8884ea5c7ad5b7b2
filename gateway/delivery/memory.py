"""The memory renders hold: an upper bound per render, a budget for all in flight.

Decoded pixels, not bytes of files, are what a render storm exhausts; each
render reserves its bound before it decodes anything, and the freed buffers
go back to the system once the storm is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
from collections.abc import AsyncIterator, Collection, Mapping

__all__ = ["PixelBudget", "give_back_memory", "peak_pixels"]


def peak_pixels(
    sizes: Mapping[str, tuple[int, int]],
    jpegs: Collection[str],
    hints: Mapping[str, tuple[int, int] | None],
    output: tuple[int, int],
) -> int:
    """An upper bound of the pixels a render holds at once.

    Each source decoded (a JPEG with a hint at reduced scale: at most twice the
    hint each way), its resampled copy, and the output twice (the canvas and
    the composite that replaces it).
    """
    total = 2 * output[0] * output[1]
    for key, (width, height) in sizes.items():
        hint = hints.get(key)
        decoded = width * height
        if hint is not None:
            if key in jpegs:
                decoded = min(decoded, 4 * hint[0] * hint[1])
            decoded += hint[0] * hint[1]
        total += decoded
    return total


class PixelBudget:
    """Pixels the renders in flight may hold together; the rest wait their turn.

    A render larger than the whole budget still runs, alone: the per-image
    limits (`GATEWAY_MAX_SOURCE_PIXELS`, `GATEWAY_MAX_OUTPUT_PIXELS`) bound it.
    """

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._used = 0
        self._freed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def reserved(self, pixels: int) -> AsyncIterator[None]:
        async with self._freed:
            await self._freed.wait_for(
                lambda: self._used == 0 or self._used + pixels <= self._budget
            )
            self._used += pixels
        try:
            yield
        finally:
            async with self._freed:
                self._used -= pixels
                self._freed.notify_all()


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to trim
        return None


def give_back_memory() -> None:
    if (libc := _libc()) is not None:
        libc.malloc_trim(0)
