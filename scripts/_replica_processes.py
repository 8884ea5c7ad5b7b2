"""The gateway processes of `scripts/replicas.py`: two `serve`s on one catalog
and one store, started together and always stopped, and the CLI beside them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiohttp

from scripts.moto_server import ACCESS_KEY, SECRET_KEY

__all__ = ["Replica", "ReplicaCheckError", "Shared", "cli", "replica_env", "serving"]

_START_TIMEOUT: Final = 60.0


class ReplicaCheckError(Exception):
    """A promise did not hold, or a replica did not start; the message says which."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Shared:
    """What both replicas share: the catalog's database and an existing bucket."""

    database_url: str
    s3_endpoint: str
    bucket: str
    access_key: str = ACCESS_KEY
    secret_key: str = field(default=SECRET_KEY, repr=False)


@dataclass(frozen=True, slots=True)
class Replica:
    name: str
    base: str
    env: dict[str, str]
    log: Path


def replica_env(shared: Shared, data_dir: Path, port: int) -> dict[str, str]:
    # Nothing of the caller's gateway configuration leaks in.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEWAY_", "AWS_", "CLOUDINARY_"))
    }
    env.update(
        GATEWAY_DATA_DIR=str(data_dir),
        GATEWAY_HOST="127.0.0.1",
        GATEWAY_PORT=str(port),
        GATEWAY_WORKERS="1",
        GATEWAY_DELIVERY="render",
        GATEWAY_DATABASE_URL=shared.database_url,
        GATEWAY_ORIGINALS_URL=f"s3://{shared.bucket}/originals",
        GATEWAY_S3_ENDPOINT=shared.s3_endpoint,
        AWS_ACCESS_KEY_ID=shared.access_key,
        AWS_SECRET_ACCESS_KEY=shared.secret_key,
    )
    return env


def tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-600:].strip()
    except OSError:
        return ""


@contextlib.asynccontextmanager
async def serving(
    session: aiohttp.ClientSession, replicas: Sequence[Replica]
) -> AsyncIterator[None]:
    """Start the replicas together (their schema migrations race, as in a
    rollout); wait until each is ready; stop them all afterwards."""
    processes: list[asyncio.subprocess.Process] = []
    try:
        for replica in replicas:
            with replica.log.open("wb") as log:
                processes.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "gateway",
                        "serve",
                        env=replica.env,
                        stdout=log,
                        stderr=asyncio.subprocess.STDOUT,
                        stdin=asyncio.subprocess.DEVNULL,
                    )
                )
        await asyncio.gather(
            *(ready(session, r, p) for r, p in zip(replicas, processes, strict=True))
        )
        yield
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        for process in processes:
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()


async def ready(
    session: aiohttp.ClientSession,
    replica: Replica,
    process: asyncio.subprocess.Process,
) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.get(f"{replica.base}/readyz") as response:
                if response.status == 200:
                    return
        if process.returncode is not None or time.monotonic() > deadline:
            raise ReplicaCheckError(
                f"replica {replica.name} did not start: {tail(replica.log)}"
            )
        await asyncio.sleep(0.05)


async def cli(env: dict[str, str], *argv: str) -> dict[str, object]:
    """The real `image-gateway` command against the shared catalog."""
    command = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(command.communicate(), 60)
    if command.returncode != 0:
        raise ReplicaCheckError(f"image-gateway {argv[0]} {argv[1]}: {err.decode()}")
    doc = json.loads(out)
    if not isinstance(doc, dict):
        raise ReplicaCheckError(f"image-gateway {argv[0]} printed {doc!r}")
    return doc
