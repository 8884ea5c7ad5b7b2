"""Benchmark local rendering of the seed's three-tile token on 3000x2000 JPEG originals.

Measured in one run, so the ratios hold however fast this machine is today:

  cold      one render end to end over loopback, the render cache disabled
  warm      the same request answered from the render cache, end to end
  load      renders per second with both cores busy (concurrent clients, no cache)
  naive     the same picture made the plain way in-process: full decode and one
            LANCZOS resize per source, no draft, then paste and encode; single
            and with a two-thread pool

Targets: cold at least 2x faster than naive; warm at most 10 ms.

Usage: python scripts/bench_render.py [--cold 15] [--warm 300] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
from PIL import Image
from yarl import URL

# Run as `python scripts/NAME.py`, only scripts/ is on sys.path: add the project
# root so that the `scripts` package imports.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway import Settings
from gateway.catalog import SqliteCatalog
from gateway.delivery.links import delivery_url
from gateway.originals import LocalOriginalStore, add_original
from scripts._bench import free_port, server
from scripts.seed004 import IMAGE, ISSUER, LAYER_1, LAYER_2, tiling
from signing import IssuerKey, mint
from transforms import Limits
from transforms.render.pillow import sample_image

# Seed 004's three images, each with its own generated original's colours.
IMAGES = (
    (IMAGE, ((255, 183, 77), (183, 28, 28))),
    (LAYER_1, ((174, 213, 129), (27, 94, 32))),
    (LAYER_2, ((129, 212, 250), (13, 71, 161))),
)
KEY = IssuerKey(kid="bench", secret="r" * 48)


async def seed(data_dir: Path) -> list[bytes]:
    layout = Settings(data_dir=data_dir)  # where the gateway will look
    catalog = await SqliteCatalog.open(layout.database)
    store = LocalOriginalStore(layout.originals)
    originals = []
    try:
        await catalog.add_issuer(issuer_id=ISSUER, secret=KEY.secret, kid=KEY.kid)
        for image_id, colors in IMAGES:
            data = sample_image(3000, 2000, colors)
            await add_original(
                catalog, store, Limits(), issuer_id=ISSUER, image_id=image_id, data=data
            )
            originals.append(data)
    finally:
        await catalog.close()
    return originals


def naive(originals: list[bytes]) -> bytes:
    """The plain way: decode everything fully, one LANCZOS resize each, paste."""
    tiles = []
    for data in originals:
        image = Image.open(io.BytesIO(data))
        image.load()
        tiles.append(image.resize((800, 533), Image.Resampling.LANCZOS))
    canvas = Image.new("RGB", (2400, 533), (255, 255, 255))
    for i, tile in enumerate(tiles):
        canvas.paste(tile, (800 * i, 0))
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=82, progressive=True)
    return out.getvalue()


def timed(fn: Callable[[], object], n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def per_second(fn: Callable[[], object], seconds: float, threads: int) -> float:
    done = 0
    deadline = time.monotonic() + seconds

    def worker() -> int:
        count = 0
        while time.monotonic() < deadline:
            fn()
            count += 1
        return count

    with ThreadPoolExecutor(threads) as pool:
        done = sum(pool.map(lambda _: worker(), range(threads)))
    return done / seconds


async def fetch_times(
    url: URL | str, n: int, headers: dict[str, str] | None = None
) -> list[float]:
    times = []
    async with aiohttp.ClientSession() as session:
        for _ in range(n):
            start = time.perf_counter()
            async with session.get(url, headers=headers) as response:
                body = await response.read()
                assert response.status == 200, body[:300]
            times.append(time.perf_counter() - start)
    return times


async def load(base: URL, seconds: float, clients: int) -> float:
    """Renders per second; every request a different tiling, so none is shared."""
    done = 0
    deadline = time.monotonic() + seconds
    urls = [
        delivery_url(
            base, IMAGE, mint(KEY, issuer_id=ISSUER, transformations=tiling(w))
        )
        for w in range(700, 900)
    ]
    async with aiohttp.ClientSession() as session:

        async def client() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                url = urls[done % len(urls)]
                async with session.get(url) as response:
                    await response.read()
                    if response.status == 200:
                        done += 1

        await asyncio.gather(*(client() for _ in range(clients)))
    return done / seconds


def ms(values: list[float], q: float = 0.5) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold", type=int, default=15, help="cold renders to time")
    parser.add_argument("--warm", type=int, default=300, help="warm requests to time")
    parser.add_argument("--seconds", type=float, default=10.0, help="per load phase")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        work = Path(tmp)
        originals = asyncio.run(seed(work))
        token = mint(KEY, issuer_id=ISSUER, transformations=tiling())
        env = {"GATEWAY_DATA_DIR": str(work), "GATEWAY_DELIVERY": "render",
               "GATEWAY_ACCESS_LOG": "false", "GATEWAY_LOG_LEVEL": "WARNING", "GATEWAY_WORKERS": "1"}  # fmt: skip
        command = [sys.executable, "-m", "gateway", "serve"]

        naive_cold = timed(lambda: naive(originals), args.cold)
        cold_port, warm_port = free_port(), free_port()
        # Cache of one byte: nothing fits, every request renders.
        cold_env = {
            **env,
            "GATEWAY_PORT": str(cold_port),
            "GATEWAY_RENDER_CACHE_BYTES": "1",
        }
        with server(command, cold_port, cold_env):
            base = URL(f"http://127.0.0.1:{cold_port}")
            url = delivery_url(base, IMAGE, token)
            asyncio.run(fetch_times(url, 2))  # first-use costs (imports, page cache)
            gw_cold = asyncio.run(fetch_times(url, args.cold))
            gw_rate = asyncio.run(load(base, args.seconds, clients=4))
        naive_rate = per_second(lambda: naive(originals), args.seconds, threads=2)
        with server(command, warm_port, {**env, "GATEWAY_PORT": str(warm_port)}):
            url = delivery_url(URL(f"http://127.0.0.1:{warm_port}"), IMAGE, token)
            asyncio.run(fetch_times(url, 1))
            gw_warm = asyncio.run(fetch_times(url, args.warm))

    cold_ratio = ms(naive_cold) / ms(gw_cold)
    print("\nseed three-tile render on 3000x2000 JPEG originals -> 2400x533 JPEG\n")
    print(f"naive Pillow, in-process, cold      median {ms(naive_cold):7.1f} ms")
    print(f"gateway, HTTP on loopback, cold     median {ms(gw_cold):7.1f} ms   "
          f"{cold_ratio:.2f}x faster than naive (target >= 2x)")  # fmt: skip
    print(f"gateway, HTTP on loopback, warm     median {ms(gw_warm):7.2f} ms   "
          f"p99 {ms(gw_warm, 0.99):.2f} ms (target <= 10 ms)")  # fmt: skip
    print(f"renders/s, both cores busy          naive {naive_rate:6.1f} (2 threads)   "
          f"gateway {gw_rate:6.1f} (4 clients, distinct tilings)   "
          f"{gw_rate / naive_rate:.2f}x")  # fmt: skip
    ok = cold_ratio >= 2 and ms(gw_warm) <= 10
    print("\nPASS" if ok else "\nFAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
