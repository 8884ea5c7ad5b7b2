"""Originals in an S3-compatible object store, shared by every replica.

- Keys are `<prefix><first two hex digits>/<sha256>`, the local layout's.
- Nothing half-written is visible: a PUT, and the completion of a multipart
  upload, make an object appear whole or not at all. Past `part_size` bytes
  an original goes up in parts, one part in memory at a time; a failed
  multipart upload is aborted, and one a crash left is aborted by the sweep.
- Reads: the renderer needs an original's bytes. Each is read whole into
  memory, at most the size the catalog recorded for it and checked against
  its SHA-256, then kept in a byte-bounded LRU cache per worker
  (`GATEWAY_ORIGINALS_CACHE_BYTES`): content addressing means a cached
  original is never stale, even after a delete on another replica (the
  catalog, not the store, says what exists). Memory rather than a local disk
  cache because originals are bounded by the upload limit, a render decodes
  them into far more memory anyway, and a disk cache would be one more set of
  files to bound, share between workers and sweep.
- Credentials, region and endpoint come from `Settings` and are handed to
  the SDK explicitly, with the `legacy` defaults mode: the SDK then has no
  reason to ask an instance-metadata service for credentials, region or
  defaults, and no environment variable is changed to stop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Collection, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError
from cachetools import LRUCache

from gateway.config import ConfigError, OriginalsSettings, S3Location
from gateway.errors import OriginalsUnavailableError
from gateway.originals.store import STRAY_AGE, check_sha256

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import (
        CompletedPartTypeDef,
        ObjectIdentifierTypeDef,
    )

__all__ = ["PART_SIZE", "S3OriginalStore", "open_s3_store"]

log = logging.getLogger("gateway.originals")

# Above this an original goes up in parts of this size (S3's least is 5 MiB).
PART_SIZE: Final = 8 * 1024 * 1024
# Renders, probes and ingests of one worker that may talk to S3 at once.
_CONNECTIONS: Final = 32
_CONNECT_TIMEOUT: Final = 5.0
_MISSING: Final = frozenset({"404", "NoSuchKey", "NotFound"})
_DELETE_BATCH: Final = 1000  # the most one DeleteObjects takes


class S3OriginalStore:
    def __init__(
        self,
        client: S3Client,
        location: S3Location,
        *,
        cache_bytes: int,
        read_timeout: float,
        part_size: int = PART_SIZE,
    ) -> None:
        self.client = client
        self.read_timeout = read_timeout
        self.location = location
        self.bucket = location.bucket
        self.prefix = location.prefix
        self.part_size = part_size
        self._cache_bytes = cache_bytes
        self._cache: LRUCache[str, bytes] = LRUCache(maxsize=cache_bytes, getsizeof=len)
        self._key_re = re.compile(
            re.escape(self.prefix) + r"([0-9a-f]{2})/([0-9a-f]{64})"
        )

    def key(self, sha256: str) -> str:
        check_sha256(sha256)
        return f"{self.prefix}{sha256[:2]}/{sha256}"

    async def put(self, data: bytes) -> str:
        sha256 = await asyncio.to_thread(_digest, data)
        key = self.key(sha256)
        with _unavailable_on_failure():
            if await self._refresh(key):
                return sha256
            if len(data) <= self.part_size:
                await self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
            else:
                await self._upload_parts(key, _slices(data, self.part_size))
        return sha256

    async def put_file(self, path: Path, sha256: str) -> None:
        """Copy a local original here, its bytes checked against `sha256` as they
        go: one that does not match is never completed (`ValueError`)."""
        key = self.key(sha256)
        size = await asyncio.to_thread(lambda: path.stat().st_size)
        with _unavailable_on_failure():
            if size <= self.part_size:
                data = await asyncio.to_thread(path.read_bytes)
                if hashlib.sha256(data).hexdigest() != sha256:
                    raise ValueError(f"{path} does not hash to its name")
                await self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
            else:
                await self._upload_parts(key, _file_parts(path, self.part_size, sha256))

    async def size(self, sha256: str) -> int | None:
        """The stored object's size, or None when there is none."""
        with _unavailable_on_failure():
            try:
                head = await self.client.head_object(
                    Bucket=self.bucket, Key=self.key(sha256)
                )
            except ClientError as exc:
                if _error_code(exc) in _MISSING:
                    return None
                raise
        return head["ContentLength"]

    async def read(self, sha256: str, *, size: int) -> bytes:
        if (cached := self._cache.get(sha256)) is not None:
            return cached
        with _unavailable_on_failure():
            try:
                response = await self.client.get_object(
                    Bucket=self.bucket, Key=self.key(sha256)
                )
            except ClientError as exc:
                if _error_code(exc) in _MISSING:
                    raise FileNotFoundError(sha256) from None
                raise
            async with response["Body"] as body:
                if response["ContentLength"] != size:
                    # Another bucket, or a damaged object: never rendered.
                    raise OSError(
                        f"original {sha256} holds {response['ContentLength']} "
                        f"bytes, the catalog says {size}"
                    )
                data = await body.read()
        if await asyncio.to_thread(_digest, data) != sha256:
            raise OSError(f"original {sha256} does not hash to its key")
        if len(data) <= self._cache_bytes:
            self._cache[sha256] = data
        return data

    def forget(self, sha256: str) -> None:
        """Drop it from the read cache (a migration reads each original once)."""
        self._cache.pop(sha256, None)

    async def remove(self, sha256: str) -> None:
        self.forget(sha256)
        with _unavailable_on_failure():
            # Deleting a missing key succeeds: no error to tell apart.
            await self.client.delete_object(Bucket=self.bucket, Key=self.key(sha256))

    async def sweep(self, in_use: Collection[str], *, older_than: float) -> int:
        now = time.time()
        removed = 0
        batch: list[ObjectIdentifierTypeDef] = []
        with _unavailable_on_failure():
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            async for page in pages:
                for item in page.get("Contents", ()):
                    sha256 = self._sha256(item["Key"])
                    if (
                        sha256 is not None
                        and sha256 not in in_use
                        and item["LastModified"].timestamp() < now - older_than
                    ):
                        batch.append({"Key": item["Key"]})
                    if len(batch) == _DELETE_BATCH:
                        removed += await self._delete(batch)
                        batch = []
            if batch:
                removed += await self._delete(batch)
            await self._abort_stale_uploads(now - STRAY_AGE)
        return removed

    async def check(self) -> None:
        """The bucket answers, within one call's time (`read_timeout`).

        Bounded as a whole: the SDK retries a call that timed out, so a
        silent endpoint held start-up for four times GATEWAY_UPSTREAM_TIMEOUT
        (two minutes by default) before it was refused.
        """
        try:
            async with asyncio.timeout(self.read_timeout):
                await self.client.head_bucket(Bucket=self.bucket)
        except TimeoutError:
            raise ConfigError(
                f"GATEWAY_ORIGINALS_URL {self.location}: the store did not answer "
                f"within {self.read_timeout:g} s (GATEWAY_UPSTREAM_TIMEOUT)"
            ) from None
        except ClientError as exc:
            raise ConfigError(
                f"GATEWAY_ORIGINALS_URL {self.location}: the store answered "
                f"{_error_code(exc)} for the bucket"
            ) from None
        except BotoCoreError as exc:
            raise ConfigError(f"GATEWAY_ORIGINALS_URL {self.location}: {exc}") from None

    async def close(self) -> None:
        self._cache.clear()

    # Internals

    def _sha256(self, key: str) -> str | None:
        """The digest an object key of ours names; None for anyone else's."""
        match = self._key_re.fullmatch(key)
        if match is None or match[2][:2] != match[1]:
            return None
        return match[2]

    async def _refresh(self, key: str) -> bool:
        """Make an object young again by copying it onto itself; False if absent.

        One request where a HEAD and then a copy would take two.
        """
        try:
            await self.client.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": key},
                MetadataDirective="REPLACE",  # S3 refuses a copy that changes nothing
            )
        except ClientError as exc:
            if _error_code(exc) in _MISSING:
                return False
            raise
        return True

    async def _upload_parts(self, key: str, parts: AsyncIterator[bytes]) -> None:
        created = await self.client.create_multipart_upload(Bucket=self.bucket, Key=key)
        upload_id = created["UploadId"]
        try:
            done: list[CompletedPartTypeDef] = []
            number = 0
            async for chunk in parts:
                number += 1
                answer = await self.client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=chunk,
                )
                done.append({"ETag": answer["ETag"], "PartNumber": number})
            await self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": done},
            )
        except BaseException:
            # The parts are invisible but billed: hand them back. If even
            # this fails, the sweep aborts the upload once it is stale.
            with contextlib.suppress(BotoCoreError, ClientError):
                await self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id
                )
            raise

    async def _delete(self, batch: list[ObjectIdentifierTypeDef]) -> int:
        answer = await self.client.delete_objects(
            Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
        )
        for error in answer.get("Errors", ()):
            log.warning("could not remove %s: %s", error.get("Key"), error.get("Code"))
        return len(batch) - len(answer.get("Errors", ()))

    async def _abort_stale_uploads(self, cutoff: float) -> None:
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        async for page in pages:
            for upload in page.get("Uploads", ()):
                key, initiated = upload.get("Key", ""), upload.get("Initiated")
                if (
                    self._sha256(key) is not None
                    and initiated is not None
                    and initiated.timestamp() < cutoff
                ):
                    await self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload["UploadId"]
                    )


@contextlib.asynccontextmanager
async def open_s3_store(
    settings: OriginalsSettings, *, read_timeout: float, part_size: int = PART_SIZE
) -> AsyncIterator[S3OriginalStore]:
    """A store on its own client; `read_timeout` bounds each request's reads."""
    if settings.url is None:
        raise ValueError("no s3:// location configured")
    config = AioConfig(
        connect_timeout=_CONNECT_TIMEOUT,
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=_CONNECTIONS,
        # Never the 'auto' mode, which asks the metadata service for a region.
        defaults_mode="legacy",
        # Only the checksums S3 insists on: many S3-compatible stores refuse
        # the SDK's newer default ones.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    client = get_session().create_client(
        "s3",
        region_name=settings.s3_region,
        endpoint_url=settings.s3_endpoint,
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key,
        aws_session_token=settings.session_token,
        config=config,
    )
    async with client as s3:
        store = S3OriginalStore(
            s3,
            settings.url,
            cache_bytes=settings.cache_bytes,
            part_size=part_size,
            read_timeout=read_timeout,
        )
        try:
            yield store
        finally:
            await store.close()


# Helpers


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _slices(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _file_parts(path: Path, size: int, sha256: str) -> AsyncIterator[bytes]:
    """The file in parts read off the loop, hashed on the way; a mismatch raises
    before the last part is given, so the upload is aborted, never completed."""
    digest = hashlib.sha256()
    with await asyncio.to_thread(path.open, "rb") as source:
        chunk = await asyncio.to_thread(source.read, size)
        while chunk:
            await asyncio.to_thread(digest.update, chunk)
            following = await asyncio.to_thread(source.read, size)
            if not following and digest.hexdigest() != sha256:
                raise ValueError(f"{path} does not hash to its name")
            yield chunk
            chunk = following


def _error_code(exc: ClientError) -> str:
    error: Mapping[str, object] = exc.response.get("Error", {})
    return str(error.get("Code", ""))


@contextlib.contextmanager
def _unavailable_on_failure() -> Iterator[None]:
    """The store's failures as a 503 worth retrying, logged once here."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        log.warning("originals store failed: %s", exc)
        raise OriginalsUnavailableError(
            "the originals store did not answer; retry shortly",
            headers={"Retry-After": "5"},
        ) from exc
