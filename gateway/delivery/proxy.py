"""Stream an image from a signed Cloudinary URL through to our client.

- one shared `ClientSession`: a bounded pool of kept-alive connections, no
  cookie jar (Cloudinary's cookies are no business of ours), no redirects
  followed (a signed delivery URL answers the image or fails), nothing
  inflated (the bytes pass through as they came), no proxy from the
  environment;
- everything that can fail cleanly is checked before our headers go out: the
  status (200 only), the declared length against the cap, the media type
  against the ones the caller expects, and the first bytes against that
  type's magic number. Failures are `502`, silence past a timeout `504`;
- then the body streams through chunk by chunk (never the whole image in
  memory; our writes wait for the client, and the upstream's reads for our
  writes). A body that fails or runs past the cap once our `200` is out is
  cut: the connection is aborted, so that no client takes a short body for
  a whole one. A client gone stops the fetch at the next write, and the
  upstream connection is closed rather than returned to the pool;
- the URL carries Cloudinary's signature: it is in no error and no log line.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Final, NoReturn, Self

import aiohttp
from aiohttp import web

from gateway.config import UpstreamSettings
from gateway.errors import ApiError, UpstreamError, UpstreamTimeoutError
from gateway.ops.metrics import Metrics

__all__ = ["IMAGE_TYPES", "JPEG", "Proxy", "sniff"]

JPEG: Final = frozenset({"image/jpeg"})
IMAGE_TYPES: Final = frozenset(
    {"image/jpeg", "image/png", "image/gif", "image/webp", "image/avif"}
)
# Enough of the head for every signature `sniff` knows (WebP's and AVIF's
# are at offset 8).
_SNIFF_BYTES: Final = 12
# The label of the proxy's figures in gateway_upstream_duration_seconds.
_ACTION: Final = "proxy"


def sniff(head: bytes) -> str | None:
    """The image type whose magic number `head` starts with, if any."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    # ISO BMFF: a box size, then `ftyp` and the major brand.
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return "image/avif"
    return None


class _FetchError(Exception):
    """A failure to answer, with its bounded metrics label."""

    def __init__(self, kind: str, error: ApiError) -> None:
        super().__init__(kind)
        self.kind = kind
        self.error = error


class Proxy:
    """Streams images from Cloudinary's delivery hosts through one pooled session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        max_bytes: int,
        metrics: Metrics | None = None,
    ) -> None:
        self._session = session
        self.max_bytes = max_bytes
        self._metrics = metrics

    @classmethod
    @asynccontextmanager
    async def open(
        cls, settings: UpstreamSettings, *, metrics: Metrics | None = None
    ) -> AsyncIterator[Self]:
        """A proxy whose session lives as long as the `async with` (a cleanup context)."""
        connector = aiohttp.TCPConnector(limit=settings.proxy_connections)
        timeout = aiohttp.ClientTimeout(
            total=None,  # a slow client may stretch a stream; silence is bounded
            connect=settings.proxy_connect_timeout,
            sock_read=settings.proxy_read_timeout,
        )
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            trust_env=False,
            headers={"User-Agent": "image-gateway"},
        ) as session:
            yield cls(session, max_bytes=settings.proxy_max_bytes, metrics=metrics)

    async def stream(
        self,
        request: web.Request,
        url: str,
        *,
        headers: Mapping[str, str],
        expected: frozenset[str] = JPEG,
        started: float | None = None,
    ) -> web.StreamResponse:
        """Answer `request` with the image at `url`, one of the `expected` types.

        `headers` are ours to send with it (`X-Request-Id`, `Cache-Control`,
        `ETag`…): a streamed response's headers are out before any middleware
        sees it. `started` (`time.perf_counter()` when the handler began)
        gives them the `X-Runtime` every other answer gets from the
        middleware. Raises `UpstreamError` (502) or `UpstreamTimeoutError` (504)
        while nothing is sent yet; afterwards a failure aborts the connection.
        """
        unknown = expected - IMAGE_TYPES
        if not expected or unknown:
            raise ValueError(f"cannot check for {sorted(unknown) or 'no type'}")
        asked = time.perf_counter()
        try:
            upstream, media_type, head = await self._open(url, expected)
        except _FetchError as failed:
            self._observe(asked, failed.kind)
            raise failed.error from None
        self._observe(asked, None)
        try:
            response = web.StreamResponse(headers=headers)
            response.content_type = media_type
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            if started is not None:
                elapsed = time.perf_counter() - started
                response.headers["X-Runtime"] = f"{elapsed:.6f}"
            await response.prepare(request)
            if request.method == "HEAD":
                # aiohttp would write a streamed body even here: the client
                # would read it as the next response on the connection.
                await response.write_eof()
            else:
                await self._pipe(request, response, upstream, head)
            return response
        finally:
            # After a whole body the connection is back in the pool already;
            # otherwise it is closed, never reused with a body half read.
            upstream.close()

    async def _open(
        self, url: str, expected: frozenset[str]
    ) -> tuple[aiohttp.ClientResponse, str, bytes]:
        try:
            upstream = await self._session.get(
                url,
                allow_redirects=False,
                headers={
                    "Accept": ", ".join(sorted(expected)),
                    "Accept-Encoding": "identity",
                },
            )
        except TimeoutError:
            raise _FetchError(
                "timeout", UpstreamTimeoutError("Cloudinary did not answer in time")
            ) from None
        except aiohttp.ClientError as exc:
            raise _FetchError(
                "unreachable",
                UpstreamError(f"Cloudinary could not be reached: {type(exc).__name__}"),
            ) from None
        try:
            media_type, head = await self._check(upstream, expected)
        except BaseException:
            upstream.close()
            raise
        return upstream, media_type, head

    async def _check(
        self, upstream: aiohttp.ClientResponse, expected: frozenset[str]
    ) -> tuple[str, bytes]:
        """The media type and first bytes of an answer fit to pass on."""
        if upstream.status != 200:
            raise _FetchError(
                "refused",
                UpstreamError(f"Cloudinary answered {upstream.status}, not the image"),
            )
        media_type = upstream.content_type
        if media_type not in expected:
            raise _FetchError(
                "not_image",
                UpstreamError(
                    f"Cloudinary answered {media_type[:64]!r},"
                    f" not {' or '.join(sorted(expected))}"
                ),
            )
        if upstream.headers.get("Content-Encoding", "identity").lower() != "identity":
            raise _FetchError(
                "not_image", UpstreamError("Cloudinary's answer was content-encoded")
            )
        if (upstream.content_length or 0) > self.max_bytes:
            raise _FetchError("too_large", self._too_large())
        head = b""
        try:
            while len(head) < _SNIFF_BYTES and (
                chunk := await upstream.content.readany()
            ):
                head += chunk
        except TimeoutError:
            raise _FetchError(
                "timeout",
                UpstreamTimeoutError("Cloudinary did not send the image in time"),
            ) from None
        except aiohttp.ClientError as exc:
            raise _FetchError(
                "unreadable",
                UpstreamError(f"Cloudinary's answer broke off: {type(exc).__name__}"),
            ) from None
        if len(head) > self.max_bytes:
            raise _FetchError("too_large", self._too_large())
        if sniff(head) != media_type:
            raise _FetchError(
                "not_image",
                UpstreamError(f"Cloudinary's answer is not the {media_type} it says"),
            )
        return media_type, head

    async def _pipe(
        self,
        request: web.Request,
        response: web.StreamResponse,
        upstream: aiohttp.ClientResponse,
        head: bytes,
    ) -> None:
        """Copy the body through; abort our connection if it cannot be whole."""
        sent, chunk = 0, head
        while chunk:
            sent += len(chunk)
            if sent > self.max_bytes:
                self._cut(request, "too_large", self._too_large())
            try:
                await response.write(chunk)
            except ConnectionError:
                return  # the client has gone: the caller closes the upstream
            try:
                chunk = await upstream.content.readany()
            except TimeoutError:
                self._cut(
                    request,
                    "timeout",
                    UpstreamTimeoutError("Cloudinary stopped sending the image"),
                )
            except aiohttp.ClientError as exc:
                self._cut(
                    request,
                    "unreadable",
                    UpstreamError(
                        f"Cloudinary's answer broke off: {type(exc).__name__}"
                    ),
                )
        await response.write_eof()

    def _cut(self, request: web.Request, kind: str, error: ApiError) -> NoReturn:
        """Abort our connection mid-body: a reset, not a clean end the client trusts.

        The error still reaches the error middleware (and the metrics and
        access log); aiohttp finds the connection gone and sends nothing more.
        """
        if self._metrics is not None:
            self._metrics.upstream_errors[kind] += 1
        if (transport := request.transport) is not None:
            transport.abort()
        raise error

    def _too_large(self) -> UpstreamError:
        return UpstreamError(f"the image is larger than {self.max_bytes} bytes")

    def _observe(self, started: float, failure: str | None) -> None:
        """Time to the first bytes (or the failure): the stream's length is the client's."""
        if self._metrics is not None:
            self._metrics.observe_upstream(
                _ACTION, time.perf_counter() - started, failure
            )
