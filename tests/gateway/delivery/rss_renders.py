"""Run concurrent renders of large sources in this process; print peak RSS growth.

    python -m tests.gateway.delivery.rss_renders PIXEL_BUDGET

Run in a process of its own by `test_renderer.py`: the growth of a fresh
process is what a budget bounds (a test process's heap, reused, would hide it).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from gateway import create_app
from gateway.catalog import SqliteCatalog
from gateway.originals.ingest import add_original
from gateway.originals.local import LocalOriginalStore
from signing import IssuerKey, mint
from tests.conftest import SEED_ISSUER, make_settings
from tests.images import zero_png

KEY = IssuerKey(kid="rss", secret="r" * 40)
SOURCES = 4
SIDE = 3000  # 9 M pixels each: 36 MB decoded as RGBA


def _rss() -> int:
    with open("/proc/self/statm") as statm:  # noqa: PTH123 - read often, cheaply
        return int(statm.read().split()[1]) * 4096


async def main(budget: int) -> int:
    data_dir = Path(tempfile.mkdtemp())
    base = make_settings(data_dir)
    settings = replace(
        base,
        render=replace(base.render, workers=SOURCES, pixel_budget=budget),
    )
    catalog = await SqliteCatalog.open(settings.database)
    await catalog.add_issuer(issuer_id=SEED_ISSUER, secret=KEY.secret, kid=KEY.kid)
    store = LocalOriginalStore(settings.originals)
    ids = []
    for i in range(SOURCES):
        png = zero_png(SIDE, SIDE + i)  # distinct originals
        record = await add_original(
            catalog, store, settings.limits, issuer_id=SEED_ISSUER, data=png
        )
        ids.append(record.id)
    await catalog.close()
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    peak = baseline = _rss()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    steps = [{"crop": "fit", "width": 64}]
    responses = await asyncio.gather(
        *(
            client.get(
                f"/images/{image}?token={mint(KEY, issuer_id=SEED_ISSUER, transformations=steps)}"
            )
            for image in ids
        )
    )
    done.set()
    sampler.join()
    assert [r.status for r in responses] == [200] * SOURCES
    await client.close()
    return (peak - baseline) // (1024 * 1024)


if __name__ == "__main__":
    print(asyncio.run(main(int(sys.argv[1]))))
