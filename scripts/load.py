"""Hold a mixed load on a served gateway; report its answers and its workers' memory.

The gateway runs as `image-gateway serve` (local rendering, its default
configuration, `--workers` of them) on loopback. `--connections` clients loop
until `--seconds` have passed, each request drawn from a fixed mix:

  cached     the same delivery token again (answered from the render cache)
  fresh      a new token for the same picture (verified, then the cache)
  render     a never-seen transformation (a real render)
  bad-token  a forged token (401)
  upload     a small PNG through the API (201, or 429/503 past the bounds)
  metrics    a /metrics scrape
  status     /readyz

It prints requests per second, the answers by status, any 5xx or socket error,
and each worker's RSS after the warm-up and at the end. Exit status 1 if any
5xx or socket error was seen.

Usage: python scripts/load.py [--seconds 60] [--connections 256] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import cast

import aiohttp
from PIL import Image

# Run as `python scripts/load.py`, only scripts/ is on sys.path: add the project
# root so that the `scripts` package imports.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts._bench import free_port
from signing import IssuerKey, mint

MIX = (
    ("cached", 30),
    ("fresh", 20),
    ("render", 10),
    ("bad-token", 15),
    ("upload", 5),
    ("metrics", 5),
    ("status", 15),
)


def _png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (seed % 256, 80, 160)).save(out, format="PNG")
    return out.getvalue()


def _cli(data_dir: Path, *argv: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", *argv],
        env={"GATEWAY_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    doc: dict[str, object] = json.loads(result.stdout)
    return doc


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _workers(parent: int) -> list[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children")
    pids = [int(p) for p in children.read_text().split()] if children.exists() else []
    return pids or [parent]


async def _client(
    session: aiohttp.ClientSession,
    base: str,
    tokens: dict[str, object],
    deadline: float,
    counts: Counter[str],
) -> None:
    kinds = [kind for kind, weight in MIX for _ in range(weight)]
    image = str(tokens["image"])
    fresh = cast(list[str], tokens["fresh"])
    renders = cast(list[str], tokens["render"])
    while time.monotonic() < deadline:
        kind = random.choice(kinds)  # noqa: S311 - a load mix, not a secret
        method, data, headers = "GET", None, None
        match kind:
            case "cached":
                url = str(tokens["cached"])
            case "fresh":
                url = f"{base}/images/{image}?token={random.choice(fresh)}"  # noqa: S311
            case "render":
                url = f"{base}/images/{image}?token={random.choice(renders)}"  # noqa: S311
            case "bad-token":
                url = f"{base}/images/{image}?token=eyJhbGciOiJIUzI1NiJ9.e30.forged"
            case "upload":
                method = "POST"
                url = f"{base}/v1/images"
                data = aiohttp.FormData()
                data.add_field("image", _png(random.randrange(256)), filename="l.png")  # noqa: S311
                headers = {"Authorization": f"Bearer {tokens['api_key']}"}
            case "metrics":
                url = f"{base}/metrics"
            case _:
                url = f"{base}/readyz"
        try:
            async with session.request(
                method, url, data=data, headers=headers
            ) as answer:
                await answer.read()
                counts[f"{kind} {answer.status}"] += 1
                if answer.status >= 500 and answer.status != 503:
                    counts["5xx"] += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            counts[f"socket error {kind} {type(exc).__name__}"] += 1
            counts["errors"] += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--server-log",
        type=Path,
        help="keep the gateway's log (its access log too) in this file",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gateway-load-") as tmp:
        data_dir = Path(tmp)
        issuer = _cli(data_dir, "issuer", "add", "--name", "load")
        source = data_dir / "source.png"
        source.write_bytes(_png(7))
        image = _cli(
            data_dir,
            "image",
            "add",
            "--issuer",
            str(issuer["id"]),
            "--file",
            str(source),
        )
        port = free_port()
        env = {
            "GATEWAY_DATA_DIR": str(data_dir),
            "GATEWAY_PORT": str(port),
            "GATEWAY_WORKERS": str(args.workers),
            "GATEWAY_LOG_LEVEL": "WARNING",
        }
        log = (
            args.server_log.open("w")  # closed with the server
            if args.server_log is not None
            else subprocess.DEVNULL
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            env={**os.environ, **env},
            stdout=log,
            stderr=log,
        )
        with server, contextlib.ExitStack() as closing:
            if not isinstance(log, int):
                closing.enter_context(log)
            try:
                return asyncio.run(
                    _load(args, server.pid, port, data_dir, issuer, image)
                )
            finally:
                server.terminate()


async def _load(
    args: argparse.Namespace,
    parent: int,
    port: int,
    data_dir: Path,
    issuer: dict[str, object],
    image: dict[str, object],
) -> int:
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as probe:
        for _ in range(200):
            try:
                async with probe.get(f"{base}/readyz") as answer:
                    if answer.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)

    # Tokens are minted ahead, with the issuer's key as `issuer add` printed it.
    key = IssuerKey(kid=str(issuer["kid"]), secret=str(issuer["secret"]))
    issuer_id = str(issuer["id"])
    cached = mint(
        key, issuer_id=issuer_id, transformations=[{"crop": "fit", "width": 32}]
    )
    fresh = [
        mint(key, issuer_id=issuer_id, transformations=[{"crop": "fit", "width": 32}])
        for _ in range(min(50_000, int(1000 * args.seconds)))
    ]
    render = [
        mint(
            key,
            issuer_id=issuer_id,
            transformations=[
                {"crop": "fit", "width": 8 + i % 3000},
                {"angle": i % 360},
            ],
        )
        for i in range(min(20_000, int(400 * args.seconds)))
    ]
    tokens: dict[str, object] = {
        "image": image["id"],
        "cached": f"{base}/images/{image['id']}?token={cached}",
        "fresh": fresh,
        "render": render,
        "api_key": issuer["api_key"],
    }
    counts: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=args.connections)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        warm_up = time.monotonic() + min(10.0, args.seconds / 6)
        deadline = time.monotonic() + args.seconds
        clients = [
            asyncio.ensure_future(_client(session, base, tokens, deadline, counts))
            for _ in range(args.connections)
        ]
        await asyncio.sleep(max(0.0, warm_up - time.monotonic()))
        after_warm_up = {pid: _rss_mb(pid) for pid in _workers(parent)}
        # RSS every few seconds until the end: flat means its range stays
        # narrow, not only that two readings agree.
        samples: dict[int, list[float]] = {}
        done = asyncio.gather(*clients)
        while not done.done():
            for pid in _workers(parent):
                samples.setdefault(pid, []).append(_rss_mb(pid))
            await asyncio.wait([done], timeout=5.0)
        await done
    at_end = {pid: _rss_mb(pid) for pid in _workers(parent)}
    total = sum(v for k, v in counts.items() if " " in k and not k.startswith("socket"))
    print(
        f"{args.workers} worker(s), {args.connections} connections, {args.seconds:g} s"
    )
    print(f"requests/s {total / args.seconds:.0f}")
    for name, count in sorted(counts.items()):
        print(f"  {name:28} {count}")
    for pid, rss in at_end.items():
        seen = samples.get(pid) or [rss]
        half = len(seen) // 2
        print(
            f"  worker {pid}: RSS {after_warm_up.get(pid, 0):.0f} MB after warm-up, "
            f"{rss:.0f} MB at the end; every 5 s: {min(seen):.0f}-{max(seen):.0f} MB, "
            f"highest in the first half {max(seen[:half] or seen):.0f} MB, "
            f"in the second {max(seen[half:]):.0f} MB"
        )
    bad = counts["5xx"] + counts["errors"]
    print(
        "PASS"
        if not bad
        else f"FAIL: {counts['5xx']} 5xx, {counts['errors']} socket errors"
    )
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
