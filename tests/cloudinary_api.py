"""Cloudinary's Upload API on loopback, for tests that start a gateway with CLOUDINARY_URL.

`serve --demo` uploads its originals at start-up; pointed here (the account's
`upload_prefix`) it gets an answer shaped as Cloudinary's, after the request's
signature is checked with the SDK's own `api_sign_request`. Delivery URLs
still name res.cloudinary.com: browsers in the tests resolve no outside name.
"""

from __future__ import annotations

import asyncio
import io
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import cloudinary.utils
from aiohttp import web
from PIL import Image

__all__ = ["VERSION", "served_upload_api", "upload_api"]

VERSION: Final = 1
_SIGNED_OUT: Final = frozenset({"file", "api_key", "signature", "resource_type"})


def upload_api(api_key: str, api_secret: str) -> web.Application:
    """`POST /v1_1/{cloud}/image/upload`: check the signature, answer the asset."""

    async def upload(request: web.Request) -> web.Response:
        form = await request.post()
        params = {k: str(v) for k, v in form.items() if k not in _SIGNED_OUT}
        expected = cloudinary.utils.api_sign_request(params, api_secret)
        if form.get("api_key") != api_key or form.get("signature") != expected:
            return web.json_response(
                {"error": {"message": "Invalid Signature"}}, status=401
            )
        upload = form["file"]
        assert isinstance(upload, web.FileField)
        with Image.open(io.BytesIO(upload.file.read())) as image:
            width, height = image.size
            kind = (image.format or "jpeg").lower()
        return web.json_response(
            {
                "public_id": params["public_id"],
                "version": VERSION,
                "format": "jpg" if kind == "jpeg" else kind,
                "width": width,
                "height": height,
                "type": params.get("type", "upload"),
                "resource_type": "image",
            }
        )

    app = web.Application()
    app.router.add_post("/v1_1/{cloud}/image/upload", upload)
    return app


@contextmanager
def served_upload_api(api_key: str, api_secret: str) -> Iterator[str]:
    """The API on a free loopback port, in a thread of its own: its URL."""
    ready = threading.Event()
    stop: list[asyncio.Event] = []

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]

    async def main() -> None:
        runner = web.AppRunner(upload_api(api_key, api_secret), access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        stop.append(asyncio.Event())
        ready.set()
        await stop[0].wait()
        await runner.cleanup()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(main(),))
    thread.start()
    ready.wait(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(10)
        loop.close()
