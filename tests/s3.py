"""A real S3 protocol server on loopback for the tests: moto's standalone
server in a child process (so no SDK in this process is patched), and
settings that point the gateway at a fresh bucket on it."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NoReturn

import pytest

from gateway import Settings
from gateway.config import OriginalsSettings, S3Location
from scripts.moto_server import ACCESS_KEY, SECRET_KEY, MotoError, start_moto

__all__ = [
    "ACCESS_KEY",
    "SECRET_KEY",
    "S3Server",
    "moto_server",
    "new_bucket_name",
    "s3_settings",
    "unavailable",
]


@dataclass(frozen=True, slots=True)
class S3Server:
    endpoint: str


def unavailable(reason: str) -> NoReturn:
    """Skip, visibly; under CI a missing service fails the run instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"S3 test server unavailable under CI: {reason}")
    pytest.skip(f"S3 test server unavailable: {reason}")


@contextlib.contextmanager
def moto_server(log: Path) -> Iterator[S3Server]:
    """Start moto's server on a free loopback port; stop it afterwards."""
    try:
        server = start_moto(log)
    except MotoError as exc:
        unavailable(str(exc))
    try:
        yield S3Server(server.endpoint)
    finally:
        server.stop()


def s3_settings(settings: Settings, server: S3Server, bucket: str) -> Settings:
    """`settings` with originals in `bucket` (under a prefix) on `server`."""
    return replace(
        settings,
        store=OriginalsSettings(
            url=S3Location(bucket=bucket, prefix="originals/"),
            s3_endpoint=server.endpoint,
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
        ),
    )


def new_bucket_name() -> str:
    return f"test-{uuid.uuid4().hex[:20]}"
