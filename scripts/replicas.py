"""Two replicas, one catalog, one store: what scaling out promises, shown end to end.

Starts two gateways (`python -m gateway serve`, one worker each, local
rendering, the default configuration otherwise) on two loopback ports,
sharing one PostgreSQL catalog and one S3 store of originals, then:

- uploads N images through `POST /v1/images`, split across both replicas and
  concurrent (as many at once per replica as one API key may: 4 by default);
- lists them through each (`GET /v1/images`, pages of 100 followed by
  `links.next`): every image exactly once, in the same order on both;
- deletes images (10 by default) one at a time through replica A and times
  replica B until it answers `404` for each, both its delivery URL (warm on
  B before the delete) and `/v1/images/{id}`;
- revokes an API key with the CLI against the shared database (as an operator
  beside replica B would) and times replica A until it refuses the key (`401`).

Both times must stay within the documented consistency bound (one second).
Without `--url`, a throwaway PostgreSQL cluster is started (Debian's
`postgresql` package); moto's S3 server is started in any case. Everything
started is stopped on exit, failed or not.

    .venv/bin/python scripts/replicas.py [--images 1000] [--deletes 10] [--url postgresql://…]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
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
from scripts._replica_processes import (
    Replica,
    ReplicaCheckError,
    Shared,
    cli,
    replica_env,
    serving,
)
from scripts.moto_server import ACCESS_KEY, SECRET_KEY, MotoError, start_moto
from scripts.pg_cluster import ClusterError, start_cluster
from signing import IssuerKey, mint

__all__ = ["BOUND", "ReplicaCheckError", "Shared", "Timings", "main", "run"]

# The documented consistency bound (GATEWAY_CATALOG_POLL_INTERVAL's default).
BOUND: Final = 1.0
# Uploads one API key may have in flight on one replica (GATEWAY_UPLOADS_PER_KEY).
_PER_REPLICA: Final = 4
_REQUEST_TIMEOUT: Final = aiohttp.ClientTimeout(total=30)
_PAGE: Final = 100


@dataclass(slots=True)
class Timings:
    """Seconds each step took (the bounds' are from the write's answer on)."""

    start: float = 0.0
    upload: float = 0.0
    listing: dict[str, float] = field(default_factory=dict)
    delete_seen: list[float] = field(default_factory=list)
    revoke_seen: float = 0.0


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
    replicas: Sequence[Replica],
    api_key: str,
    count: int,
) -> dict[str, list[str]]:
    """Upload `count` images, alternating replicas; the ids each replica made."""
    made: dict[str, list[str]] = {r.name: [] for r in replicas}

    async def uploader(replica: Replica, indices: Iterator[int]) -> None:
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
    session: aiohttp.ClientSession, replica: Replica, api_key: str
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


_Probe = tuple[str, dict[str, str] | None]  # a URL, and headers to send


async def _until(
    session: aiohttp.ClientSession, what: str, expected: int, probes: Sequence[_Probe]
) -> float:
    """Seconds until every probe answers `expected`; past the bound, an error."""
    started = time.monotonic()
    while True:
        answers = await asyncio.gather(*(_status(session, *p) for p in probes))
        elapsed = time.monotonic() - started
        if all(a == expected for a in answers):
            return elapsed
        if elapsed > BOUND:
            raise ReplicaCheckError(
                f"{what}: still {answers} after {elapsed:.3f} s (bound {BOUND:g} s)"
            )
        await asyncio.sleep(0.002)


def _row(label: str, seconds: float, note: str) -> str:
    return f"  {label:<36}{seconds:8.3f} s  {note}"


@dataclass(frozen=True, slots=True)
class _Issuer:
    id: str
    key: IssuerKey
    api_key: str


async def run(
    shared: Shared,
    work: Path,
    *,
    images: int = 1000,
    deletes: int = 10,
    out: Callable[[str], None] = print,
) -> Timings:
    """Start both replicas, check every promise, print the timings; stop them."""
    if images < 2 * deletes or deletes < 1:
        raise ValueError("at least one delete, and twice as many images")
    timings = Timings()
    replicas = [
        Replica(
            name,
            f"http://127.0.0.1:{port}",
            replica_env(shared, work / name, port),
            work / f"replica-{name}.log",
        )
        for name, port in (("A", free_port()), ("B", free_port()))
    ]
    out(
        "two replicas (one worker each, local rendering) on one PostgreSQL "
        f"catalog and one S3 store; logs in {work}"
    )
    async with aiohttp.ClientSession(timeout=_REQUEST_TIMEOUT) as session:
        started = time.monotonic()
        async with serving(session, replicas):
            timings.start = time.monotonic() - started
            out(_row("both ready", timings.start, "(schema made by one of them)"))
            doc = await cli(replicas[1].env, "issuer", "add", "--name", "replicas")
            issuer = _Issuer(
                str(doc["id"]),
                IssuerKey(kid=str(doc["kid"]), secret=str(doc["secret"])),
                str(doc["api_key"]),
            )
            made = await _uploads(session, replicas, issuer, images, timings, out)
            await _listings(session, replicas, issuer, made, timings, out)
            await _deletes(session, replicas, issuer, made["A"][:deletes], timings, out)
            await _revocation(session, replicas, issuer, timings, out)
    return timings


async def _uploads(
    session: aiohttp.ClientSession,
    replicas: Sequence[Replica],
    issuer: _Issuer,
    images: int,
    timings: Timings,
    out: Callable[[str], None],
) -> dict[str, list[str]]:
    started = time.monotonic()
    made = await _upload_all(session, replicas, issuer.api_key, images)
    timings.upload = time.monotonic() - started
    at_once = _PER_REPLICA * len(replicas)
    out(
        _row(
            f"{images} uploads, {at_once} at once",
            timings.upload,
            f"{images / timings.upload:.0f}/s; "
            + ", ".join(f"{name} made {len(ids)}" for name, ids in made.items()),
        )
    )
    if len({i for ids in made.values() for i in ids}) != images:
        raise ReplicaCheckError(f"fewer than {images} distinct ids were made")
    return made


async def _listings(
    session: aiohttp.ClientSession,
    replicas: Sequence[Replica],
    issuer: _Issuer,
    made: dict[str, list[str]],
    timings: Timings,
    out: Callable[[str], None],
) -> None:
    """Every image exactly once through each replica, in the same order."""
    uploaded = {i for ids in made.values() for i in ids}
    orders = []
    for replica in replicas:
        started = time.monotonic()
        listed = await _list(session, replica, issuer.api_key)
        timings.listing[replica.name] = time.monotonic() - started
        if len(listed) != len(set(listed)) or set(listed) != uploaded:
            raise ReplicaCheckError(
                f"listing through {replica.name}: {len(listed)} entries, "
                f"{len(set(listed))} distinct, {len(set(listed) & uploaded)} "
                f"of the {len(uploaded)} uploaded"
            )
        orders.append(listed)
        pages = -(-len(listed) // _PAGE)
        out(
            _row(
                f"listed through {replica.name}",
                timings.listing[replica.name],
                f"{pages} pages of {_PAGE}: each image exactly once",
            )
        )
    if any(order != orders[0] for order in orders):
        raise ReplicaCheckError("the replicas list the images in different orders")
    out("  the same order through both")


async def _deletes(
    session: aiohttp.ClientSession,
    replicas: Sequence[Replica],
    issuer: _Issuer,
    victims: Sequence[str],
    timings: Timings,
    out: Callable[[str], None],
) -> None:
    """Each deleted through A while B holds it warm; B must answer 404 in time."""
    a, b = replicas
    auth = _bearer(issuer.api_key)
    token = mint(
        issuer.key, issuer_id=issuer.id, transformations=[{"crop": "fit", "width": 4}]
    )
    for victim in victims:
        delivery = f"{b.base}/images/{victim}?token={token}"
        resource = f"{b.base}/v1/images/{victim}"
        warm = [
            await _status(session, delivery),
            await _status(session, resource, auth),
        ]
        if warm != [200, 200]:
            raise ReplicaCheckError(f"before the delete, B answered {warm}")
        async with session.delete(f"{a.base}/v1/images/{victim}", headers=auth) as r:
            if r.status != 204:
                raise ReplicaCheckError(f"a delete on A answered {r.status}")
        timings.delete_seen.append(
            await _until(
                session,
                "B after a delete on A",
                404,
                [(delivery, None), (resource, auth)],
            )
        )
    seen = sorted(timings.delete_seen)
    out(
        _row(
            "B answers 404 after a delete on A",
            seen[len(seen) // 2],
            f"median of {len(seen)} (max {seen[-1]:.3f} s; bound {BOUND:g} s): "
            "warm delivery URL and /v1",
        )
    )


async def _revocation(
    session: aiohttp.ClientSession,
    replicas: Sequence[Replica],
    issuer: _Issuer,
    timings: Timings,
    out: Callable[[str], None],
) -> None:
    """A key revoked beside B (the CLI on the shared database); A must refuse it."""
    a, b = replicas
    doc = await cli(b.env, "issuer", "key", "create", "--issuer", issuer.id)
    doomed = str(doc["api_key"])
    listing = f"{a.base}/v1/images?page%5Bsize%5D=1"
    if await _status(session, listing, _bearer(doomed)) != 200:
        raise ReplicaCheckError("A refused the new API key before its revocation")
    prefix = "_".join(doomed.split("_")[:2])  # sk_<prefix>, as `key list` shows
    await cli(
        b.env, "issuer", "key", "revoke", "--issuer", issuer.id, "--prefix", prefix
    )
    timings.revoke_seen = await _until(
        session, "A after a revocation", 401, [(listing, _bearer(doomed))]
    )
    out(
        _row(
            "A answers 401 after a revocation",
            timings.revoke_seen,
            f"(bound {BOUND:g} s) for a key it had accepted",
        )
    )
    if await _status(session, listing, _bearer(issuer.api_key)) != 200:
        raise ReplicaCheckError("A refused the key that was not revoked")


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
        "--deletes", type=int, default=10, help="images deleted and timed (10)"
    )
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
            asyncio.run(run(shared, work, images=args.images, deletes=args.deletes))
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
