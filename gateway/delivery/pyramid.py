"""Deep zoom made cheap: decoded pyramid levels of originals, kept and shared.

A viewer opening an image asks for dozens of tiles at several scales at
once. Decoding the whole original for each is the naive cost. Here each
tile is cut from a level: the original decoded once at 1/1, 1/2, 1/4 … of its
size (a JPEG at 1/2 to 1/8 straight from its DCT coefficients, so the coarse
levels cost a fraction of a full decode). Levels are kept in a cache bounded
in bytes, and a level is decoded once however many tiles wait for it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from concurrent.futures import Executor
from typing import Final

from cachetools import LRUCache

from gateway.delivery.iiif import View, level_size
from gateway.errors import ImageNotFoundError
from gateway.originals.store import OriginalStore
from transforms import Limits, SourceImageError
from transforms.render.pillow import Decoded, decode

__all__ = ["Levels", "decode_stored", "level_box", "level_factor"]

log = logging.getLogger("gateway.render")

# Beyond 1/64 a level is a few dozen pixels: smaller views resample from it.
_MAX_FACTOR: Final = 64
_Key = tuple[str, int]  # the original's SHA-256, the level's factor


def level_factor(view: View) -> int:
    """The coarsest level (a power of two) still at least the view's resolution."""
    (_, _, rw, rh), (ow, oh) = view.region, view.size
    scale = max(ow / rw, oh / rh)
    factor = 1
    while factor < _MAX_FACTOR and scale * factor * 2 <= 1 + 1e-9:
        factor *= 2
    return factor


def level_box(
    view: View, factor: int, level: tuple[int, int]
) -> tuple[float, float, float, float]:
    """The view's region in the level's pixels (a level rounds its sides up)."""
    x, y, w, h = view.region
    sx, sy = level[0] / view.full[0], level[1] / view.full[1]
    return x * sx, y * sy, (x + w) * sx, (y + h) * sy


async def decode_stored(
    executor: Executor,
    sha256: str,
    data: bytes,
    limits: Limits,
    hint: tuple[int, int] | None,
) -> Decoded:
    """A stored original decoded in the render threads (at `hint` when known).

    Ingest refuses a file that cannot be decoded: one that fails here is
    damaged, or came in another way (an older gateway, a restored backup),
    and is logged by its SHA-256 before its `SourceImageError` is answered.
    """
    try:
        return await asyncio.get_running_loop().run_in_executor(
            executor, decode, data, limits, hint
        )
    except SourceImageError as exc:
        log.warning("stored original %s cannot be decoded: %s", sha256, exc.detail)
        raise


class Levels:
    """Decoded levels of originals, bounded in bytes, each decoded once at a time."""

    def __init__(
        self, store: OriginalStore, executor: Executor, limits: Limits, max_bytes: int
    ) -> None:
        self._store = store
        self._executor = executor
        self._limits = limits
        self._max_bytes = max_bytes
        self._cache: LRUCache[_Key, Decoded] = LRUCache(
            maxsize=max_bytes, getsizeof=_bytes
        )
        self._loading: dict[_Key, asyncio.Task[Decoded]] = {}
        self.decodes = 0  # levels actually decoded (not cache hits or joins)

    async def level(
        self, sha256: str, file_size: int, full: tuple[int, int], factor: int
    ) -> Decoded:
        key = (sha256, factor)
        if (cached := self._cache.get(key)) is not None:
            return cached
        loading = self._loading.get(key)
        if loading is None:
            loading = asyncio.get_running_loop().create_task(
                self._decode(sha256, file_size, level_size(full, factor))
            )
            self._loading[key] = loading
            loading.add_done_callback(functools.partial(self._loaded, key))
        return await asyncio.shield(loading)

    async def _decode(
        self, sha256: str, file_size: int, size: tuple[int, int]
    ) -> Decoded:
        self.decodes += 1
        try:
            data = await self._store.read(sha256, size=file_size)
        except FileNotFoundError:  # deleted while this request waited
            raise ImageNotFoundError.unusable("the image was deleted", None) from None
        return await decode_stored(self._executor, sha256, data, self._limits, size)

    def _loaded(self, key: _Key, task: asyncio.Task[Decoded]) -> None:
        del self._loading[key]
        if task.cancelled() or task.exception() is not None:
            return  # each waiter re-raises it
        level = task.result()
        if _bytes(level) <= self._max_bytes:
            self._cache[key] = level


def _bytes(level: Decoded) -> int:
    width, height = level.image.size
    return width * height * len(level.image.getbands())
