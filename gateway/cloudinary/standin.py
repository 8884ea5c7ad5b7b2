"""The local stand-in for Cloudinary (GATEWAY_CDN=local): its account and its store.

It plays both of Cloudinary's parts the gateway uses. As the Upload API
(`upload`, `destroy`: the `Uploader` protocol), it keeps an accepted original
in the originals directory, content-addressed like every original, and
records the asset (type, public id) in an index of its own beside the catalog;
as the delivery endpoint (`gateway.http.cdn`), it finds an asset's original
there. It knows nothing of issuers or images: what a URL may show was decided
when the gateway signed it, exactly as with Cloudinary.

Its account (a fixed cloud name, an API secret generated once) lives in the
data dir, private to the gateway's user: the secret signs every redirect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from gateway.catalog import Original
from gateway.cloudinary.admin import Uploaded
from gateway.originals.ingest import prepare_original
from gateway.originals.store import OriginalStore
from transforms import Limits
from transforms.cloudinary import CloudinaryAccount, CloudinaryAsset

__all__ = ["LOCAL_CLOUD", "LocalCloud"]

LOCAL_CLOUD: Final = "local"
_FORMATS: Final[Mapping[str, str]] = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
}


class LocalCloud:
    def __init__(
        self,
        root: Path,
        account: CloudinaryAccount,
        originals: OriginalStore,
        limits: Limits,
    ) -> None:
        self.root = root
        self.account = account
        self._originals = originals
        self._limits = limits
        self._assets = root / "assets"

    @property
    def cloud_name(self) -> str:
        return self.account.cloud_name

    @classmethod
    def open(cls, root: Path, originals: OriginalStore, limits: Limits) -> LocalCloud:
        """The stand-in kept under `root`, its secret made on first use (blocking I/O)."""
        root.mkdir(parents=True, exist_ok=True)
        account = CloudinaryAccount(
            cloud_name=LOCAL_CLOUD, api_key=LOCAL_CLOUD, api_secret=_secret(root)
        )
        return cls(root, account, originals, limits)

    async def upload(
        self, data: bytes, *, public_id: str, delivery_type: str
    ) -> Uploaded:
        """Store the original and index it as (type, public id), as Cloudinary would."""
        original = await asyncio.to_thread(
            prepare_original, self._originals, self._limits, data
        )
        asset = CloudinaryAsset(
            public_id=public_id,
            version=int(time.time()),
            format=_FORMATS[original.media_type],
            delivery_type=delivery_type,
        )
        record = {
            "sha256": original.sha256,
            "media_type": original.media_type,
            "file_size": original.file_size,
            "width": original.width,
            "height": original.height,
            "version": asset.version,
        }
        await asyncio.to_thread(_write, self._index(asset), json.dumps(record))
        return Uploaded(asset, original.width, original.height)

    async def destroy(self, asset: CloudinaryAsset) -> None:
        await asyncio.to_thread(self._index(asset).unlink, missing_ok=True)

    def original(self, delivery_type: str, public_id: str) -> Original | None:
        """The original stored as this asset, or None (a small file read)."""
        path = self._index(
            CloudinaryAsset(public_id=public_id, delivery_type=delivery_type)
        )
        try:
            record = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        return Original(
            sha256=str(record["sha256"]),
            media_type=str(record["media_type"]),
            file_size=int(record["file_size"]),
            width=int(record["width"]),
            height=int(record["height"]),
        )

    def _index(self, asset: CloudinaryAsset) -> Path:
        # A public id is `[A-Za-z0-9_-]` words joined by `/` (checked by
        # CloudinaryAsset): never `..`, never absolute.
        return self._assets / asset.delivery_type / f"{asset.public_id}.json"


def _secret(root: Path) -> str:
    """The stand-in's API secret: read, or made once (mode 0600, never replaced)."""
    path = root / "api_secret"
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip()
    fd, name = tempfile.mkstemp(dir=root, prefix="secret-")  # 0600
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
            out.flush()
            os.fsync(out.fileno())
        # A link never replaces: two processes starting at once agree on the
        # first secret written.
        with contextlib.suppress(FileExistsError):
            os.link(name, path)
    finally:
        Path(name).unlink()
    return path.read_text().strip()


def _write(path: Path, text: str) -> None:
    """Write `text` whole or not at all (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".asset-")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        Path(name).replace(path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
