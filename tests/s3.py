"""A real S3 protocol server on loopback for the tests: moto's standalone
server in a child process (so no SDK in this process is patched), and
settings that point the gateway at a fresh bucket on it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, NoReturn

import pytest

from gateway import Settings
from gateway.config import OriginalsSettings, S3Location

# Moto accepts any credentials; these only have to be present.
ACCESS_KEY: Final = "test-access-key"
SECRET_KEY: Final = "test-secret-key"
_START_TIMEOUT: Final = 30.0


@dataclass(frozen=True, slots=True)
class S3Server:
    endpoint: str


def unavailable(reason: str) -> NoReturn:
    """Skip, visibly; under CI a missing service fails the run instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"S3 test server unavailable under CI: {reason}")
    pytest.skip(f"S3 test server unavailable: {reason}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback, http
            return True
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def moto_server(log: Path) -> Iterator[S3Server]:
    """Start moto's server on a free loopback port; stop it afterwards."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        try:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "moto.server",
                    "-H",
                    "127.0.0.1",
                    "-p",
                    str(port),
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        except OSError as exc:
            unavailable(f"cannot run moto.server: {exc}")
        try:
            deadline = time.monotonic() + _START_TIMEOUT
            while not _answers(f"{endpoint}/moto-api/"):
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text(errors="replace")[-300:]
                    unavailable(f"moto.server did not start: {tail.strip()}")
                time.sleep(0.1)
            yield S3Server(endpoint)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


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
