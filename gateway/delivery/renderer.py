"""Render mode: the verified chain rendered locally, off the event loop, bounded.

- `prepare()` is cheap and synchronous: it builds the chain, negotiates the
  output format, derives the ETag and plans the geometry, refusing an output
  over the pixel budget, or longer than its format holds, before any pixel is
  decoded.
- `render()` answers from a byte-bounded cache keyed by the ETag, or joins an
  identical render already running, or decodes the sources concurrently in the
  thread pool (Pillow releases the GIL for most of it; see `encode` for
  what does not) and composes there. Past the pool and
  its queue, it refuses with 503 instead of piling up memory.

A render runs as a task of its own, which every request for it awaits
through a shield: a client that goes away (its request cancelled) cancels
neither the render nor the requests that joined it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Final

from cachetools import LRUCache

from gateway.catalog import ImageRecord, Original
from gateway.config import Settings
from gateway.delivery.headers import SECURITY_HEADERS, media_qualities
from gateway.delivery.iiif import View, level_size
from gateway.delivery.memory import PixelBudget, give_back_memory, peak_pixels
from gateway.delivery.pyramid import Levels, decode_stored, level_box, level_factor
from gateway.delivery.resolver import Resolved
from gateway.errors import ImageNotFoundError, OverloadedError
from gateway.originals.store import OriginalStore
from transforms import (
    OutputTooLargeError,
    Transformation,
    dump_transformations,
    parse_render_base,
)
from transforms.basechain import Delivery
from transforms.render import Plan, RenderChain, plan
from transforms.render.pillow import (
    ENCODERS,
    OUTPUT_FORMATS,
    Decoded,
    compose,
    cut,
    encode,
)

__all__ = ["OWN_FORMAT", "Job", "Rendered", "Renderer", "negotiate"]

log = logging.getLogger("gateway.render")

# Bump when the renderer's output changes for the same input: ETags follow.
# 2: JPEGs over a megapixel are baseline; 3: opaque PNG, WebP, AVIF are RGB.
RENDER_VERSION: Final = "3"
# Planned jobs of /v3 and /image remembered per process.
_PICTURE_JOBS: Final = 4096
# What a cached render costs besides its body (its key, the `Rendered`, the
# cache's own records; measured 340 bytes): counted, or renders of a few bytes
# (IIIF's 1x1 regions, anyone's to ask for) grew the process 5x past the bound.
_ENTRY_BYTES: Final = 384
# An original's media type -> the format it is delivered in by default.
OWN_FORMAT: Final[Mapping[str, str]] = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "png",  # the first frame, losslessly
}
_NEGOTIABLE: Final = (("image/webp", "webp"), ("image/avif", "avif"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    etag: str
    extension: str
    media_type: str
    negotiated: bool  # the format came from Accept: send Vary: Accept
    attachment: bool
    filename: str
    chain: RenderChain
    sources: Mapping[str, str]  # "" (the image) or overlay id -> SHA-256
    file_sizes: Mapping[str, int]  # the same keys -> bytes, as recorded
    hints: Mapping[str, tuple[int, int] | None]
    quality: int
    expires_at: float | None
    pixels: int  # what the render holds at its peak, at most (`peak_pixels`)
    # IIIF: the source is this view cut from a pyramid level, not a decode.
    view: View | None = None


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    media_type: str


def negotiate(accept: str | None) -> str | None:
    """WebP or AVIF, whichever the client names with the higher q (WebP on a
    tie), if it names either with a q above 0."""
    qualities = media_qualities(accept)
    best, chosen = 0.0, None
    for media, extension in _NEGOTIABLE:
        if (quality := qualities.get(media, 0.0)) > best:
            best, chosen = quality, extension
    return chosen


class Renderer:
    def __init__(
        self, settings: Settings, store: OriginalStore, executor: Executor
    ) -> None:
        self.settings = settings
        self.store = store
        self.executor = executor
        self._base = parse_render_base(settings.upstream.base_chain, settings.limits)
        self._capacity = settings.render.workers + settings.render.queue
        self.renders = 0  # renders actually run (not cache hits or joins)
        self.rejections = 0  # refused with 503: the pool and its queue were full
        self.timeouts = 0  # answered 503 after GATEWAY_RENDER_TIMEOUT, render kept on
        self._running: dict[str, asyncio.Task[Rendered]] = {}
        self._memory = PixelBudget(settings.render.pixel_budget)
        # Exceptions (a plan over budget) are never remembered.
        self._pictures = functools.lru_cache(maxsize=_PICTURE_JOBS)(self._picture)
        self._views = functools.lru_cache(maxsize=_PICTURE_JOBS)(self._view)
        self.levels = Levels(
            store, executor, settings.limits, settings.render.level_cache_bytes
        )
        self._jpeg_encoding = threading.Lock()
        self._cache: LRUCache[str, Rendered] = LRUCache(
            maxsize=settings.render.cache_bytes,
            getsizeof=lambda r: len(r.body) + _ENTRY_BYTES,
        )

    @property
    def in_flight(self) -> int:
        """Renders admitted and not yet finished (running or waiting for a thread)."""
        return len(self._running)

    def prepare(self, resolved: Resolved, accept: str | None) -> Job:
        """The job for a verified token: the base chain, then the token's steps."""
        image = _original(resolved.image, None)
        layers = {
            layer_id: _original(
                resolved.overlays[layer_id], f"/transformations/{index}/overlay"
            )
            for layer_id, index in resolved.transformation.overlay_steps.items()
        }
        return self.prepare_chain(
            RenderChain.build(self._base, resolved.transformation),
            image,
            layers,
            identity=[
                self.settings.upstream.base_chain,
                dump_transformations(resolved.transformation),
            ],
            name=resolved.image.id,
            own_format=OWN_FORMAT[image.media_type],
            accept=accept,
            expires_at=resolved.token.expires_at,
        )

    def picture(
        self, image: ImageRecord, transformation: Transformation, extension: str
    ) -> Job:
        """A job of the paths without tokens: no base chain, the format their URL names.

        Remembered (bounded): a job is a pure function of the original, the
        chain and the format, and planning it costs more than answering a
        cached picture.
        """
        return self._pictures(
            image.id, _original(image, None), transformation, extension
        )

    def _picture(
        self,
        image_id: str,
        original: Original,
        transformation: Transformation,
        extension: str,
    ) -> Job:
        return self.prepare_chain(
            RenderChain.build(((), Delivery(format=extension)), transformation),
            original,
            {},
            identity=[f"f_{extension}", dump_transformations(transformation)],
            name=image_id,
            own_format=OWN_FORMAT[original.media_type],
            accept=None,
            expires_at=None,
        )

    def view(
        self, image: ImageRecord, view: View, edits: Transformation, extension: str
    ) -> Job:
        """A IIIF job: `view` cut from a pyramid level, then `edits` (mirror, turn, quality)."""
        return self._views(image.id, _original(image, None), view, edits, extension)

    def _view(
        self,
        image_id: str,
        original: Original,
        view: View,
        edits: Transformation,
        extension: str,
    ) -> Job:
        job = self.prepare_chain(
            RenderChain.build(((), Delivery(format=extension)), edits),
            # Planned over the cut view: that is the source the edits see.
            dataclasses.replace(original, width=view.size[0], height=view.size[1]),
            {},
            identity=[
                "iiif",
                [*view.region, *view.size],
                f"f_{extension}",
                dump_transformations(edits),
            ],
            name=image_id,
            own_format=OWN_FORMAT[original.media_type],
            accept=None,
            expires_at=None,
        )
        # The level the view is cut from counts too, cached or not: bounded.
        level = level_size(view.full, level_factor(view))
        return dataclasses.replace(
            job, view=view, hints={}, pixels=job.pixels + level[0] * level[1]
        )

    def prepare_chain(
        self,
        chain: RenderChain,
        image: Original,
        overlays: Mapping[str, Original],
        *,
        identity: list[object],
        name: str,
        own_format: str,
        accept: str | None,
        expires_at: float | None,
    ) -> Job:
        """The job for any chain over these originals (the stand-in's too).

        `identity` is what, with the sources and the output, decides the
        pixels: the ETag is derived from it.
        """
        wanted = chain.delivery.format
        negotiated = wanted == "auto"
        extension = (
            (negotiate(accept) or own_format) if negotiated else (wanted or own_format)
        )
        quality = chain.delivery.quality or self.settings.render.jpeg_quality
        sizes = {"": (image.width, image.height)}
        sources = {"": image.sha256}
        file_sizes = {"": image.file_size}
        jpegs = {""} if image.media_type == "image/jpeg" else set()
        for layer_id, layer in overlays.items():
            sizes[layer_id] = (layer.width, layer.height)
            sources[layer_id] = layer.sha256
            file_sizes[layer_id] = layer.file_size
            if layer.media_type == "image/jpeg":
                jpegs.add(layer_id)
        # A format the gateway chose (`f_auto`) that cannot hold the output is
        # not the client's fault: the original's own format, or PNG (any
        # side), holds it instead. A format the chain names is kept, or refused.
        candidates = [extension]
        if negotiated:
            candidates += [f for f in (own_format, "png") if f not in candidates]
        *fallible, last = candidates
        others = {k: v for k, v in sizes.items() if k}

        def planned_as(extension: str) -> Plan:
            return plan(
                chain,
                sizes[""],
                others,
                self.settings.limits,
                alpha_output=OUTPUT_FORMATS[extension][2],
                # Known only now, after negotiation: so is its limit.
                encoder=ENCODERS[extension],
            )

        for extension in fallible:
            try:
                planned = planned_as(extension)
                break
            except OutputTooLargeError:
                continue
        else:
            extension, planned = last, planned_as(last)
        media_type = OUTPUT_FORMATS[extension][1]
        identity = [
            RENDER_VERSION,
            *identity,
            sorted(sources.items()),
            extension,
            quality,
        ]
        return Job(
            etag='"'
            + hashlib.sha256(
                json.dumps(identity, separators=(",", ":")).encode()
            ).hexdigest()[:32]
            + '"',
            extension=extension,
            media_type=media_type,
            negotiated=negotiated,
            attachment=chain.delivery.attachment,
            filename=f"{name}.{extension}",
            chain=chain,
            sources=sources,
            file_sizes=file_sizes,
            hints=planned.hints,
            pixels=peak_pixels(sizes, jpegs, planned.hints, planned.size),
            quality=quality,
            expires_at=expires_at,
        )

    def headers(self, job: Job) -> dict[str, str]:
        """The 200's (and the 304's) headers: the 302's, less its no-cache trio."""
        max_age = self.settings.render.max_age
        if job.expires_at is not None:
            max_age = max(0, min(max_age, int(job.expires_at - time.time())))
        headers = {
            **SECURITY_HEADERS,
            "ETag": job.etag,
            "Cache-Control": f"private, max-age={max_age}",
        }
        if job.negotiated:
            headers["Vary"] = "Accept, Accept-Encoding"
        if job.attachment:
            headers["Content-Disposition"] = f'attachment; filename="{job.filename}"'
        return headers

    async def render(self, job: Job) -> Rendered:
        if (cached := self._cache.get(job.etag)) is not None:
            return cached
        running = self._running.get(job.etag)
        if running is None:
            if len(self._running) >= self._capacity:
                self.rejections += 1
                raise OverloadedError(
                    "the renderer is busy; retry shortly", headers={"Retry-After": "1"}
                )
            running = asyncio.get_running_loop().create_task(self._render(job))
            self._running[job.etag] = running
            running.add_done_callback(functools.partial(self._finished, job.etag))
        # A bounded queue bounds memory, not waiting: renders queued behind
        # slow ones (or behind the pixel budget) could hold a client longer
        # than any proxy in front waits. Past the deadline the caller gets a
        # 503; the render goes on, and its picture waits in the cache.
        try:
            return await asyncio.wait_for(
                asyncio.shield(running), self.settings.render.timeout
            )
        except TimeoutError:
            if not running.done():
                self.timeouts += 1
                raise OverloadedError(
                    "the render is taking long; retry shortly",
                    headers={"Retry-After": "5"},
                ) from None
        # Done after all: it ended as the deadline passed (its picture is in
        # hand, though `wait_for` raised), or failed with a TimeoutError of its
        # own (a store's read). Either way, its own outcome.
        return running.result()

    async def close(self) -> None:
        """Stop the renders under way (on shutdown, before their threads go)."""
        running = list(self._running.values())
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _finished(self, etag: str, task: asyncio.Task[Rendered]) -> None:
        del self._running[etag]
        if not self._running:
            # The storm is over: hand the freed decode buffers back to the
            # system rather than keep the peak for good.
            with contextlib.suppress(RuntimeError):  # shutting down: no matter
                self.executor.submit(give_back_memory)
        if task.cancelled() or task.exception() is not None:
            return  # each waiter re-raises it; retrieved here, so never logged
        rendered = task.result()
        if len(rendered.body) <= self.settings.render.cache_bytes:
            self._cache[etag] = rendered

    async def _render(self, job: Job) -> Rendered:
        async with self._memory.reserved(job.pixels):
            return await self._rendered(job)

    async def _rendered(self, job: Job) -> Rendered:
        self.renders += 1
        if job.view is not None:
            return await self._view_rendered(job, job.view)
        loop = asyncio.get_running_loop()
        limits = self.settings.limits

        async def load(key: str) -> Decoded:
            try:
                data = await self.store.read(job.sources[key], size=job.file_sizes[key])
            except FileNotFoundError:  # deleted while this render waited
                if key == "":
                    raise ImageNotFoundError.unusable(
                        "the image was deleted", None
                    ) from None
                raise ImageNotFoundError("an overlay's image was deleted") from None
            return await decode_stored(
                self.executor, job.sources[key], data, limits, job.hints.get(key)
            )

        keys = list(job.sources)
        decoded = await asyncio.gather(*(load(key) for key in keys))
        sources = dict(zip(keys, decoded, strict=True))
        alpha = OUTPUT_FORMATS[job.extension][2]

        def finish() -> bytes:
            base = sources.pop("")
            out = compose(job.chain, base, sources, limits, alpha_output=alpha)
            return self._encoded(out, job)

        body = await loop.run_in_executor(self.executor, finish)
        return Rendered(body, job.media_type)

    def _encoded(self, out: Decoded, job: Job) -> bytes:
        """`out` in the job's format; JPEGs one at a time.

        Pillow's JPEG encoder holds the GIL: two render threads handing it to
        each other kept the event loop waiting up to 28 ms, one 11 ms, and
        holding it they cannot encode at once anyway.
        """
        try:
            if OUTPUT_FORMATS[job.extension][0] != "JPEG":
                return encode(out, job.extension, job.quality)
            with self._jpeg_encoding:
                return encode(out, job.extension, job.quality)
        except OutputTooLargeError as exc:
            # The plan passed it: the encoder writes less than `ENCODERS` says.
            log.warning("an encoder refused a planned output: %s", exc.detail)
            raise

    async def _view_rendered(self, job: Job, view: View) -> Rendered:
        factor = level_factor(view)
        level = await self.levels.level(
            job.sources[""], job.file_sizes[""], view.full, factor
        )
        box = level_box(view, factor, level.image.size)
        limits = self.settings.limits
        alpha = OUTPUT_FORMATS[job.extension][2]

        def finish() -> bytes:
            base = cut(level, box, view.size)
            out = compose(job.chain, base, {}, limits, alpha_output=alpha)
            return self._encoded(out, job)

        loop = asyncio.get_running_loop()
        body = await loop.run_in_executor(self.executor, finish)
        return Rendered(body, job.media_type)


def _original(record: ImageRecord, pointer: str | None) -> Original:
    if record.original is None:
        raise ImageNotFoundError.unusable(
            "the image has no local original to render", pointer
        )
    return record.original
