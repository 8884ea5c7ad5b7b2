"""What only the S3 store does: its key layout, uploads that never show half,
checks on what it reads back, a sweep that leaves others' objects alone, and
the start-up check of the bucket (through the real command)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway import Settings
from gateway.originals.s3 import PART_SIZE, S3OriginalStore, open_s3_store
from tests.conftest import render_settings
from tests.images import RED, solid
from tests.s3 import ACCESS_KEY, SECRET_KEY, S3Server, new_bucket_name, s3_settings

JPEG = solid((16, 12), RED, "JPEG")


@pytest.fixture
def settings(tmp_path: Path, s3_server: S3Server, s3_bucket: str) -> Settings:
    return s3_settings(render_settings(tmp_path), s3_server, s3_bucket)


@pytest.fixture
async def s3(settings: Settings) -> AsyncIterator[S3OriginalStore]:
    async with open_s3_store(settings.store, read_timeout=10) as store:
        yield store


async def _keys(s3: S3OriginalStore) -> list[str]:
    listed = await s3.client.list_objects_v2(Bucket=s3.bucket)
    return [item["Key"] for item in listed.get("Contents", ())]


async def _unfinished(s3: S3OriginalStore) -> list[str]:
    listed = await s3.client.list_multipart_uploads(Bucket=s3.bucket)
    return [upload.get("Key", "") for upload in listed.get("Uploads", ())]


async def test_keys_are_the_sha256_under_the_prefix(s3: S3OriginalStore) -> None:
    sha256 = await s3.put(JPEG)
    assert await _keys(s3) == [f"originals/{sha256[:2]}/{sha256}"]


@pytest.mark.parametrize(
    "size", [pytest.param(1000, id="one-put"), pytest.param(PART_SIZE + 1, id="parts")]
)
async def test_a_file_that_does_not_hash_to_its_name_is_never_completed(
    s3: S3OriginalStore, tmp_path: Path, size: int
) -> None:
    """The check runs before the last part: the upload is aborted, not completed."""
    file = tmp_path / "original"
    file.write_bytes(os.urandom(size))
    claimed = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(ValueError, match="does not hash"):
        await s3.put_file(file, claimed)
    assert await _keys(s3) == []
    assert await _unfinished(s3) == []


async def test_a_file_copied_in_parts_arrives_whole(
    s3: S3OriginalStore, tmp_path: Path
) -> None:
    data = os.urandom(2 * PART_SIZE + 5)
    file = tmp_path / "original"
    file.write_bytes(data)
    sha256 = hashlib.sha256(data).hexdigest()
    await s3.put_file(file, sha256)
    assert await s3.size(sha256) == len(data)
    assert await s3.read(sha256, size=len(data)) == data
    assert await _unfinished(s3) == []


async def test_an_object_of_another_size_than_recorded_is_refused(
    s3: S3OriginalStore,
) -> None:
    """Another bucket behind the same name, or a damaged object: never rendered."""
    sha256 = await s3.put(JPEG)
    with pytest.raises(OSError, match="the catalog says"):
        await s3.read(sha256, size=len(JPEG) + 1)


async def test_an_object_whose_bytes_do_not_match_its_key_is_refused(
    s3: S3OriginalStore,
) -> None:
    sha256 = hashlib.sha256(JPEG).hexdigest()
    forged = bytes(reversed(JPEG))
    await s3.client.put_object(Bucket=s3.bucket, Key=s3.key(sha256), Body=forged)
    with pytest.raises(OSError, match="does not hash"):
        await s3.read(sha256, size=len(JPEG))


async def test_the_sweep_leaves_objects_that_are_not_originals_alone(
    s3: S3OriginalStore,
) -> None:
    sha256 = hashlib.sha256(JPEG).hexdigest()
    foreign = [
        "originals/readme.txt",
        f"originals/zz/{sha256}",  # not under its own first two digits
        f"elsewhere/{sha256[:2]}/{sha256}",  # outside the prefix
    ]
    for key in foreign:
        await s3.client.put_object(Bucket=s3.bucket, Key=key, Body=b"x")
    mine = await s3.put(JPEG)
    assert await s3.sweep(set(), older_than=-60) == 1
    assert sorted(await _keys(s3)) == sorted(foreign)
    assert mine == sha256


async def test_a_read_is_served_from_the_cache_the_second_time(
    s3: S3OriginalStore, settings: Settings
) -> None:
    """Content addressing: what was read once is the same bytes for good."""
    sha256 = await s3.put(JPEG)
    assert await s3.read(sha256, size=len(JPEG)) == JPEG
    await s3.client.delete_object(Bucket=s3.bucket, Key=s3.key(sha256))
    assert await s3.read(sha256, size=len(JPEG)) == JPEG
    async with open_s3_store(settings.store, read_timeout=10) as other:
        with pytest.raises(FileNotFoundError):
            await other.read(sha256, size=len(JPEG))


# The command line, as an operator meets it


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _gateway(
    tmp_path: Path, env: dict[str, str], *argv: str
) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_PORT": str(_closed_port()),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        **env,
    }
    environ.pop("CLOUDINARY_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "gateway", *argv],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serve_refuses_a_missing_bucket_in_one_line(
    tmp_path: Path, s3_server: S3Server
) -> None:
    bucket = new_bucket_name()
    result = _gateway(
        tmp_path,
        {
            "GATEWAY_ORIGINALS_URL": f"s3://{bucket}/originals",
            "GATEWAY_S3_ENDPOINT": s3_server.endpoint,
        },
        "serve",
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"image-gateway: GATEWAY_ORIGINALS_URL s3://{bucket}/")
    assert SECRET_KEY not in line


def test_serve_refuses_an_unreachable_store_in_one_line(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    result = _gateway(
        tmp_path,
        {"GATEWAY_ORIGINALS_URL": "s3://bucket", "GATEWAY_S3_ENDPOINT": endpoint},
        "serve",
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("image-gateway: GATEWAY_ORIGINALS_URL s3://bucket/")
    assert SECRET_KEY not in line


def test_serve_refuses_a_silent_store_within_the_upstream_timeout(
    tmp_path: Path,
) -> None:
    """An endpoint that accepts and never answers: refused after one call's
    time, not after the SDK's retries of it (four times as long)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        result = _gateway(
            tmp_path,
            {
                "GATEWAY_ORIGINALS_URL": "s3://bucket",
                "GATEWAY_S3_ENDPOINT": endpoint,
                "GATEWAY_UPSTREAM_TIMEOUT": "2",
            },
            "serve",
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        "image-gateway: GATEWAY_ORIGINALS_URL s3://bucket/: the store did not "
        "answer within 2 s (GATEWAY_UPSTREAM_TIMEOUT)"
    )
    assert elapsed < 7, elapsed  # unbounded: four tries of 2 s, and start-up


async def test_image_add_and_rm_store_and_remove_in_the_bucket(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str, s3: S3OriginalStore
) -> None:
    env = {
        "GATEWAY_ORIGINALS_URL": f"s3://{s3_bucket}/originals",
        "GATEWAY_S3_ENDPOINT": s3_server.endpoint,
    }

    async def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(_gateway, tmp_path, env, *argv)

    issuer = json.loads((await run("issuer", "add")).stdout)
    file = tmp_path / "photo.jpg"
    file.write_bytes(JPEG)
    added = await run("image", "add", "--issuer", issuer["id"], "--file", str(file))
    assert added.returncode == 0, added.stderr
    sha256 = hashlib.sha256(JPEG).hexdigest()
    assert await _keys(s3) == [s3.key(sha256)]
    assert not (tmp_path / "originals" / sha256[:2]).exists()  # not on local disk
    image = json.loads(added.stdout)
    removed = await run("image", "rm", "--id", image["id"])
    assert removed.returncode == 0, removed.stderr
    assert await _keys(s3) == []


_THROUGH_THE_STORE = """
import asyncio
from gateway import Settings
from gateway.originals.s3 import open_s3_store

async def main():
    settings = Settings.from_env()
    async with open_s3_store(settings.store, read_timeout=10) as s3:
        await s3.check()
        sha256 = await s3.put(b"bytes")
        assert await s3.read(sha256, size=5) == b"bytes"

asyncio.run(main())
"""


def test_the_sdk_never_asks_a_metadata_service(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    """With every variable that would send the SDK to an instance-metadata or
    container-credentials service pointing at a listener here, none calls it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0)
        metadata = f"http://127.0.0.1:{listener.getsockname()[1]}"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        environ |= {
            "GATEWAY_ORIGINALS_URL": f"s3://{s3_bucket}/originals",
            "GATEWAY_S3_ENDPOINT": s3_server.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            # 'auto' would ask the metadata service for the region.
            "AWS_DEFAULTS_MODE": "auto",
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": metadata,
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{metadata}/credentials",
        }
        result = subprocess.run(
            [sys.executable, "-c", _THROUGH_THE_STORE],
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody called
