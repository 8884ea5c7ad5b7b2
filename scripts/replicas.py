"""Two replicas, one catalog, one store: what scaling out promises, shown end to end.

Starts two gateways (`python -m gateway serve`, one worker each, local
rendering, the default configuration otherwise) on two loopback ports,
sharing one PostgreSQL catalog and one S3 store of originals, then:

- uploads N images through `POST /v1/images`, split across both replicas and
  concurrent (as many at once per replica as one API key may: 4 by default);
- lists them through each (`GET /v1/images`, pages of 100 followed by
  `links.next`): every image exactly once, in the same order on both;
- deletes one through replica A and times replica B until it answers `404`
  for it, both its delivery URL (warm on B before the delete) and
  `/v1/images/{id}`;
- revokes an API key with the CLI against the shared database (as an operator
  beside replica B would) and times replica A until it refuses the key (`401`).

Both times must stay within the documented consistency bound (one second).
Without `--url`, a throwaway PostgreSQL cluster is started (Debian's
`postgresql` package); moto's S3 server is started in any case. Everything
started is stopped on exit, failed or not.

    .venv/bin/python scripts/replicas.py [--images 1000] [--url postgresql://…]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, NoReturn

# Run as `python scripts/replicas.py`, only scripts/ is on sys.path: add the
# project root so that the `scripts` package imports.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from PIL import Image

from gateway.config import OriginalsSettings
from gateway.env import as_s3_url
from gateway.originals.s3 import open_s3_store
from scripts._bench import free_port
from scripts.moto_server import ACCESS_KEY, SECRET_KEY, MotoError, start_moto
from scripts.pg_cluster import ClusterError, start_cluster
from signing import IssuerKey, mint

__all__ = ["BOUND", "ReplicaCheckError", "Shared", "Timings", "main", "run"]

# The documented consistency bound (GATEWAY_CATALOG_POLL_INTERVAL's default).
BOUND: Final = 1.0
# Uploads one API key may have in flight on one replica (GATEWAY_UPLOADS_PER_KEY).
_PER_REPLICA: Final = 4
_START_TIMEOUT: Final = 60.0
_REQUEST_TIMEOUT: Final = aiohttp.ClientTimeout(total=30)
_PAGE: Final = 100


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


@dataclass(slots=True)
class Timings:
    """Seconds each step took (the bounds' are from the write's answer on)."""

    start: float = 0.0
    upload: float = 0.0
    listing: dict[str, float] = field(default_factory=dict)
    delete_seen: float = 0.0
    revoke_seen: float = 0.0


@dataclass(frozen=True, slots=True)
class _Replica:
    name: str
    base: str
    env: dict[str, str]
    log: Path


def _replica_env(shared: Shared, data_dir: Path, port: int) -> dict[str, str]:
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


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-600:].strip()
    except OSError:
        return ""


@contextlib.asynccontextmanager
async def _serving(
    session: aiohttp.ClientSession, replicas: Sequence[_Replica]
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
            *(_ready(session, r, p) for r, p in zip(replicas, processes, strict=True))
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


async def _ready(
    session: aiohttp.ClientSession,
    replica: _Replica,
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
                f"replica {replica.name} did not start: {_tail(replica.log)}"
            )
        await asyncio.sleep(0.05)


async def _cli(env: dict[str, str], *argv: str) -> dict[str, object]:
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


def _png(index: int) -> bytes:
    """A tiny picture of its own (a distinct original) for each index."""
    out = io.BytesIO()
    color = (index % 256, index // 256 % 256, 7 + index // 65536)
    Image.new("RGB", (8, 6), color).save(out, format="PNG")
    return out.getvalue()


def _bearer(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


async def _upload_all(
    session: aiohttp.ClientSession,
    replicas: Sequence[_Replica],
    api_key: str,
    count: int,
) -> dict[str, list[str]]:
    """Upload `count` images, alternating replicas; the ids each replica made."""
    made: dict[str, list[str]] = {r.name: [] for r in replicas}

    async def uploader(replica: _Replica, indices: Iterator[int]) -> None:
        for index in indices:  # shared per replica: each index taken once
            form = aiohttp.FormData()
            form.add_field(
                "image", _png(index), filename=f"{index}.png", content_type="image/png"
            )
            async with session.post(
                f"{replica.base}/v1/images", data=form, headers=_bearer(api_key)
            ) as response:
                if response.status != 201:
                    raise ReplicaCheckError(
                        f"upload {index} to {replica.name} answered "
                        f"{response.status}: {await response.text()}"
                    )
                doc = await response.json(content_type=None)
            made[replica.name].append(doc["data"]["id"])

    workers = []
    for offset, replica in enumerate(replicas):
        indices = iter(range(offset, count, len(replicas)))
        workers += [uploader(replica, indices) for _ in range(_PER_REPLICA)]
    await asyncio.gather(*workers)
    return made


async def _list(
    session: aiohttp.ClientSession, replica: _Replica, api_key: str
) -> list[str]:
    """Every id, page by page, following `links.next` as a client would."""
    ids: list[str] = []
    url: str | None = f"{replica.base}/v1/images?page%5Bsize%5D={_PAGE}"
    while url is not None:
        async with session.get(url, headers=_bearer(api_key)) as response:
            if response.status != 200:
                raise ReplicaCheckError(
                    f"listing on {replica.name} answered {response.status}"
                )
            doc = await response.json(content_type=None)
        ids += [item["id"] for item in doc["data"]]
        following = doc["links"].get("next")
        url = None if following is None else replica.base + following
    return ids


async def _status(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> int:
    async with session.get(url, headers=headers) as response:
        await response.read()
        return response.status


async def _until(
    what: str, expected: int, probes: Callable[[], Sequence[asyncio.Future[int]]]
) -> float:
    """Seconds until every probe answers `expected`; past the bound, an error."""
    started = time.monotonic()
    while True:
        answers = await asyncio.gather(*probes())
        elapsed = time.monotonic() - started
        if all(a == expected for a in answers):
            return elapsed
        if elapsed > BOUND:
            raise ReplicaCheckError(
                f"{what}: still {answers} after {elapsed:.3f} s (bound {BOUND:g} s)"
            )
        await asyncio.sleep(0.002)


async def run(
    shared: Shared,
    work: Path,
    *,
    images: int = 1000,
    out: Callable[[str], None] = print,
) -> Timings:
    """Start both replicas, check every promise, print the timings; stop them."""
    if images < 2:
        raise ValueError("at least two images: one each")
    timings = Timings()
    replicas = [
        _Replica(
            name,
            f"http://127.0.0.1:{port}",
            _replica_env(shared, work / name, port),
            work / f"replica-{name}.log",
        )
        for name, port in (("A", free_port()), ("B", free_port()))
    ]
    a, b = replicas
    out(
        f"two replicas (one worker each, local rendering) on one PostgreSQL "
        f"catalog and one S3 store; logs in {work}"
    )
    async with aiohttp.ClientSession(timeout=_REQUEST_TIMEOUT) as session:
        started = time.monotonic()
        async with _serving(session, replicas):
            timings.start = time.monotonic() - started
            out(f"  both ready                      {timings.start:8.2f} s")
            issuer = await _cli(b.env, "issuer", "add", "--name", "replicas")
            issuer_id, api_key = str(issuer["id"]), str(issuer["api_key"])
            key = IssuerKey(kid=str(issuer["kid"]), secret=str(issuer["secret"]))

            started = time.monotonic()
            made = await _upload_all(session, replicas, api_key, images)
            timings.upload = time.monotonic() - started
            out(
                f"  {images} uploads, {_PER_REPLICA * len(replicas)} at once  "
                f"{timings.upload:8.2f} s ({images / timings.upload:.0f}/s; "
                f"A made {len(made['A'])}, B {len(made['B'])})"
            )
            uploaded = {i for ids in made.values() for i in ids}
            if len(uploaded) != images:
                raise ReplicaCheckError(f"{len(uploaded)} distinct ids, not {images}")

            orders = {}
            for replica in replicas:
                started = time.monotonic()
                orders[replica.name] = listed = await _list(session, replica, api_key)
                timings.listing[replica.name] = time.monotonic() - started
                if len(listed) != len(set(listed)) or set(listed) != uploaded:
                    raise ReplicaCheckError(
                        f"listing through {replica.name}: {len(listed)} entries, "
                        f"{len(set(listed))} distinct, {len(set(listed) & uploaded)} "
                        f"of the {images} uploaded"
                    )
                out(
                    f"  listed through {replica.name}"
                    f"               {timings.listing[replica.name]:8.2f} s "
                    f"({-(-images // _PAGE)} pages): each image exactly once"
                )
            if orders["A"] != orders["B"]:
                raise ReplicaCheckError("A and B list the images in different orders")
            out("  same order through both")

            victim = made["A"][0]
            token = mint(
                key, issuer_id=issuer_id, transformations=[{"crop": "fit", "width": 4}]
            )
            delivery = f"{b.base}/images/{victim}?token={token}"
            resource = f"{b.base}/v1/images/{victim}"
            warm = [
                await _status(session, delivery),
                await _status(session, resource, _bearer(api_key)),
            ]
            if warm != [200, 200]:
                raise ReplicaCheckError(f"before the delete, B answered {warm}")
            async with session.delete(
                f"{a.base}/v1/images/{victim}", headers=_bearer(api_key)
            ) as response:
                if response.status != 204:
                    raise ReplicaCheckError(f"delete on A answered {response.status}")
            timings.delete_seen = await _until(
                "B after a delete on A",
                404,
                lambda: [
                    asyncio.ensure_future(_status(session, delivery)),
                    asyncio.ensure_future(_status(session, resource, _bearer(api_key))),
                ],
            )
            out(
                f"  deleted through A; B answers 404 (delivery and /v1) after "
                f"{1000 * timings.delete_seen:.1f} ms (bound {BOUND:g} s)"
            )

            other = await _cli(b.env, "issuer", "key", "create", "--issuer", issuer_id)
            doomed = str(other["api_key"])
            listing = f"{a.base}/v1/images?page%5Bsize%5D=1"
            if await _status(session, listing, _bearer(doomed)) != 200:
                raise ReplicaCheckError(
                    "A refused the new API key before its revocation"
                )
            prefix = "_".join(doomed.split("_")[:2])  # sk_<prefix>, as `key list` shows
            await _cli(
                b.env,
                "issuer",
                "key",
                "revoke",
                "--issuer",
                issuer_id,
                "--prefix",
                prefix,
            )
            timings.revoke_seen = await _until(
                "A after a revocation",
                401,
                lambda: [
                    asyncio.ensure_future(_status(session, listing, _bearer(doomed)))
                ],
            )
            out(
                f"  API key revoked (CLI, shared database); A answers 401 after "
                f"{1000 * timings.revoke_seen:.1f} ms (bound {BOUND:g} s)"
            )
            if await _status(session, listing, _bearer(api_key)) != 200:
                raise ReplicaCheckError("A refused the key that was not revoked")
    return timings


async def _new_bucket(settings: OriginalsSettings, bucket: str) -> None:
    async with open_s3_store(settings, read_timeout=10) as store:
        await store.client.create_bucket(Bucket=bucket)


def _stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the `finally` clauses stop what was started."""

    def stop(signum: int, frame: object) -> NoReturn:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000, help="default 1000")
    parser.add_argument(
        "--url",
        help="an existing, empty PostgreSQL database (default: a throwaway cluster)",
    )
    args = parser.parse_args(argv)
    _stop_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="replicas-") as tmp:
        work = Path(tmp)
        try:
            cluster = None if args.url else start_cluster()
        except ClusterError as exc:
            print(f"replicas: PostgreSQL could not be started: {exc}", file=sys.stderr)
            return 2
        try:
            moto = start_moto(work / "moto.log")
        except MotoError as exc:
            if cluster is not None:
                cluster.destroy()
            print(f"replicas: {exc}", file=sys.stderr)
            return 2
        try:
            bucket = "replicas"
            store = OriginalsSettings(
                url=as_s3_url("bucket", f"s3://{bucket}"),
                s3_endpoint=moto.endpoint,
                access_key_id=ACCESS_KEY,
                secret_access_key=SECRET_KEY,
            )
            asyncio.run(_new_bucket(store, bucket))
            shared = Shared(
                database_url=args.url or cluster.url(),  # type: ignore[union-attr]
                s3_endpoint=moto.endpoint,
                bucket=bucket,
            )
            asyncio.run(run(shared, work, images=args.images))
        except ReplicaCheckError as exc:
            print(f"FAIL: {exc}")
            return 1
        finally:
            moto.stop()
            if cluster is not None:
                cluster.destroy()
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
