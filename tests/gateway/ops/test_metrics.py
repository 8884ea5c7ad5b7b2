"""`/metrics`: Prometheus text, bounded labels, nothing secret or per-image."""

from __future__ import annotations

import asyncio
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pytest_aiohttp import AiohttpClient

from gateway import Settings, create_app
from gateway.catalog import CatalogStore
from gateway.keys import CATALOG
from gateway.ops.metrics import _FOLD_EVERY, SCRAPE_TTL, Metrics
from tests.conftest import SEED_IMAGE, Client, Mint


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_requests_errors_and_caches_are_counted(
    client: Client, mint_token: Mint
) -> None:
    token = mint_token()
    for _ in range(3):
        await client.get(f"/images/{SEED_IMAGE}?token={token}", allow_redirects=False)
    await client.get(f"/images/{SEED_IMAGE}?token=not.a.jwt", allow_redirects=False)
    await client.get("/nowhere")
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    samples = _samples(text)
    assert (
        samples[("gateway_requests_total", (("route", "deliver"), ("status", "302")))]
        == 3
    )
    assert (
        samples[("gateway_requests_total", (("route", "unmatched"), ("status", "404")))]
        == 1
    )
    assert samples[("gateway_errors_total", (("code", "token_malformed"),))] == 1
    assert samples[("gateway_errors_total", (("code", "route_not_found"),))] == 1
    assert samples[("gateway_cache_lookups_total", (("lookup", "redirects:hit"),))] == 2
    assert (
        samples[("gateway_request_duration_seconds_count", (("route", "deliver"),))]
        == 4
    )
    assert ("gateway_renders_in_flight", ()) in samples
    assert ("process_resident_memory_bytes", ()) in samples
    # Nothing unbounded or secret reaches a label.
    assert token not in text
    assert SEED_IMAGE not in text
    assert not re.search(r'="[^"]{40,}"', text)


def test_requests_counted_in_bulk_are_all_in_a_snapshot() -> None:
    """Requests are appended and folded in bulk: none lost across folds, the
    list never longer than one fold, every snapshot complete."""
    metrics = Metrics()
    count = 2 * _FOLD_EVERY + 3
    for i in range(count):
        metrics.observe("deliver", 302 if i % 2 else 404, 0.0002)
        assert len(metrics._pending) < _FOLD_EVERY
    figures = metrics.snapshot()
    assert figures["requests\tdeliver\t302"] == count // 2
    assert figures["requests\tdeliver\t404"] == count - count // 2
    assert (
        sum(v for k, v in figures.items() if k.startswith("latency\tdeliver\t"))
        == count
    )
    assert figures["latency_sum\tdeliver"] == pytest.approx(count * 0.0002)
    assert metrics._pending == []


async def test_a_flood_of_scrapes_builds_one_a_second(
    aiohttp_client: AiohttpClient, settings: Settings, catalog: CatalogStore
) -> None:
    """A scrape reads the catalog and every worker's figures (3 ms of the
    event loop), and anyone may ask for one."""
    app = create_app(settings)
    client = await aiohttp_client(app)
    await client.get("/status")  # the app has started
    store = app[CATALOG].store
    reads = 0
    counts = store.ingest_counts

    async def counted() -> dict[str, int]:
        nonlocal reads
        reads += 1
        return await counts()

    store.ingest_counts = counted  # type: ignore[method-assign]
    texts = await asyncio.gather(*(client.get("/metrics") for _ in range(20)))
    bodies = {await response.read() for response in texts}
    await client.get("/livez")
    later = await (await client.get("/metrics")).read()
    assert reads == 1
    assert len(bodies) == 1
    assert later in bodies  # the livez since is not in it yet
    await asyncio.sleep(SCRAPE_TTL)
    rebuilt = await (await client.get("/metrics")).text()
    assert reads == 2
    assert 'gateway_requests_total{route="livez",status="200"} 1.0' in rebuilt
