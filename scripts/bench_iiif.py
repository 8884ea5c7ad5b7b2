"""Benchmark IIIF deep zoom: 256-px tiles of a 3000x2000 JPEG at every scale factor.

For each scale factor the info.json advertises (1, 2, 4, 8, 16):

  cold   a freshly started gateway (empty caches) asked for N random tiles
         of that level, 8 at a time, as a viewer opening the image does;
  warm   N other random tiles of the same level, one at a time, from the
         same gateway (the level decoded; each tile is new: no byte cache);
  naive  the same cold tiles made the naive way, a full decode of the
         original per tile (open, load, crop, resize, encode) on a pool of
         as many threads as the gateway has render workers, in this
         process: no HTTP at all, so the ratio flatters the naive side.

The gateway runs in its default configuration (render mode, its JSON access
log on, one worker process). Targets: cold at least 3x the naive rate;
warm tiles answered in under 5 ms (median).

Usage: python scripts/bench_iiif.py [--tiles 32]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Run as `python scripts/NAME.py`, only scripts/ is on sys.path: add the project
# root so that the `scripts` package imports.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from PIL import Image

from gateway import Settings
from gateway.catalog import SqliteCatalog
from gateway.originals import LocalOriginalStore, add_original
from scripts._bench import free_port, server
from transforms import Limits
from transforms.render.pillow import sample_image

ISSUER = "6b6fdb7b-65cb-4acf-97b9-d25eff795348"
IMAGE = "a0b1c2d3-0000-4000-8000-000000001111"
WIDTH, HEIGHT, TILE = 3000, 2000, 256
FACTORS = (1, 2, 4, 8, 16)
WORKERS = os.cpu_count() or 2  # the gateway's default render workers


async def seed(data_dir: Path) -> bytes:
    """An issuer and one public 3000x2000 JPEG original; its bytes."""
    layout = Settings(data_dir=data_dir)
    data = sample_image(WIDTH, HEIGHT, ((255, 183, 77), (183, 28, 28)))
    catalog = await SqliteCatalog.open(layout.database)
    try:
        await catalog.add_issuer(issuer_id=ISSUER, secret="i" * 48, kid="bench")
        await add_original(
            catalog,
            LocalOriginalStore(layout.originals),
            Limits(),
            issuer_id=ISSUER,
            image_id=IMAGE,
            data=data,
        )
        await catalog.update_image(IMAGE, {"is_public": True})
    finally:
        await catalog.close()
    return data


Tile = tuple[int, int, int, int, int, int]  # region x, y, w, h; size w, h


def random_tiles(rng: random.Random, factor: int, count: int) -> list[Tile]:
    """Distinct tiles of a level at random places (multiples of the factor)."""
    span = TILE * factor
    tiles: set[Tile] = set()
    while len(tiles) < count:
        x = rng.randrange(0, WIDTH, factor)
        y = rng.randrange(0, HEIGHT, factor)
        w, h = min(span, WIDTH - x), min(span, HEIGHT - y)
        tiles.add((x, y, w, h, -(-w // factor), -(-h // factor)))
    return sorted(tiles, key=lambda _: rng.random())


def url(port: int, tile: Tile) -> str:
    x, y, w, h, ow, oh = tile
    return f"http://127.0.0.1:{port}/iiif/3/{IMAGE}/{x},{y},{w},{h}/{ow},{oh}/0/default.jpg"


async def fetch_all(port: int, tiles: list[Tile], concurrency: int) -> list[float]:
    """Seconds per tile; every answer must be a 200."""
    limit = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:

        async def one(tile: Tile) -> float:
            async with limit:
                started = time.perf_counter()
                async with session.get(url(port, tile)) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{url(port, tile)}: {response.status}")
                return time.perf_counter() - started

        return await asyncio.gather(*(one(tile) for tile in tiles))


def naive(data: bytes, tile: Tile) -> bytes:
    x, y, w, h, ow, oh = tile
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        part = image.crop((x, y, x + w, y + h))
    if part.size != (ow, oh):
        part = part.resize((ow, oh), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    part.save(out, format="JPEG", quality=82, progressive=True)
    return out.getvalue()


def naive_rate(data: bytes, tiles: list[Tile]) -> float:
    with ThreadPoolExecutor(WORKERS) as pool:
        started = time.perf_counter()
        list(pool.map(lambda tile: naive(data, tile), tiles))
        return len(tiles) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, default=32, help="tiles per case")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)  # noqa: S311 - tile positions, not secrets
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-iiif-") as tmp:
        work = Path(tmp)
        data = asyncio.run(seed(work))
        for factor in FACTORS:
            count = args.tiles
            cold_tiles = random_tiles(rng, factor, count)
            warm_tiles = random_tiles(rng, factor, count)
            port = free_port()
            env = {
                "GATEWAY_DATA_DIR": str(work),
                "GATEWAY_PORT": str(port),
                "GATEWAY_WORKERS": "1",
            }
            with server([sys.executable, "-m", "gateway", "serve"], port, env):
                started = time.perf_counter()
                asyncio.run(fetch_all(port, cold_tiles, 8))
                cold = count / (time.perf_counter() - started)
                warm = asyncio.run(fetch_all(port, warm_tiles, 1))
            rows.append((factor, cold, naive_rate(data, cold_tiles), warm))
    print(f"IIIF tiles of a {WIDTH}x{HEIGHT} JPEG, {args.tiles} tiles per case")
    print(
        f"{'scale':>5} {'cold/s':>8} {'naive/s':>8} {'cold/naive':>10} "
        f"{'warm/s':>8} {'warm ms p50':>11} {'p95':>6}"
    )
    ok = True
    for factor, cold, naive_per_s, warm in rows:
        p50 = statistics.median(warm) * 1000
        p95 = sorted(warm)[int(0.95 * (len(warm) - 1))] * 1000
        ratio = cold / naive_per_s
        ok = ok and ratio >= 3 and p50 < 5
        print(
            f"{'1/' + str(factor):>5} {cold:8.0f} {naive_per_s:8.1f} {ratio:9.1f}x "
            f"{len(warm) / sum(warm):8.0f} {p50:11.2f} {p95:6.2f}"
        )
    print("targets (cold >= 3x naive, warm p50 < 5 ms):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
