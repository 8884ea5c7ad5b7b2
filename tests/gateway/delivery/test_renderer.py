"""Render mode through HTTP: the seed's token renders the tiling with Pillow."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import pytest
from aiohttp import ClientResponse, web
from PIL import Image
from pytest_aiohttp import AiohttpClient

from gateway import Settings, create_app
from gateway.catalog import Original, SqliteCatalog
from gateway.delivery import renderer as renderer_module
from gateway.delivery.renderer import Rendered
from gateway.errors import OverloadedError
from gateway.keys import RENDERER, RESOLVER
from gateway.originals.ingest import add_original
from gateway.originals.local import LocalOriginalStore
from tests.conftest import (
    OTHER_IMAGE,
    OTHER_ISSUER,
    OTHER_KEY,
    SEED_IMAGE,
    SEED_ISSUER,
    SEED_KEY,
    SEED_OVERLAY_1,
    SEED_OVERLAY_2,
    Client,
    Mint,
    render_settings,
)
from tests.helpers import assert_error, eventually
from tests.images import BLUE, GREEN, RED, WHITE, near, png_with_data, solid
from transforms.render.pillow import Decoded
from transforms.render.pillow import encode as pillow_encode


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return render_settings(tmp_path)


@pytest.fixture
async def catalog(settings: Settings) -> AsyncIterator[SqliteCatalog]:
    """The seed's ids, as local 3000x2000 originals: red, green, blue."""
    catalog = await SqliteCatalog.open(settings.database)
    store = LocalOriginalStore(settings.originals)
    await catalog.add_issuer(
        issuer_id=SEED_ISSUER, secret=SEED_KEY.secret, kid=SEED_KEY.kid
    )
    await catalog.add_issuer(
        issuer_id=OTHER_ISSUER, secret=OTHER_KEY.secret, kid=OTHER_KEY.kid
    )
    for issuer, image_id, color in (
        (SEED_ISSUER, SEED_IMAGE, RED),
        (SEED_ISSUER, SEED_OVERLAY_1, GREEN),
        (SEED_ISSUER, SEED_OVERLAY_2, BLUE),
        (OTHER_ISSUER, OTHER_IMAGE, WHITE),
    ):
        data = solid((3000, 2000), color, "JPEG", quality=95)
        await add_original(
            catalog,
            store,
            settings.limits,
            issuer_id=issuer,
            image_id=image_id,
            data=data,
        )
    yield catalog
    await catalog.close()


def path(token: str, image: str = SEED_IMAGE) -> str:
    return f"/images/{image}?token={token}"


def picture(body: bytes) -> Image.Image:
    return Image.open(io.BytesIO(body))


def at(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = image.convert("RGB").getpixel(xy)
    assert isinstance(value, tuple)
    return value


async def test_seed_token_renders_the_tiling(client: Client, mint_token: Mint) -> None:
    response = await client.get(path(mint_token()))
    assert response.status == 200
    assert response.content_type == "image/jpeg"
    image = picture(await response.read())
    assert image.size == (2400, 533)
    for x, color in (
        (400, RED),
        (1200, GREEN),
        (2000, BLUE),
        (790, RED),
        (810, GREEN),
        (1590, GREEN),
        (1610, BLUE),
    ):
        assert near(at(image, (x, 266)), color, 12), (x, at(image, (x, 266)))


async def test_a_render_has_an_etag_private_caching_and_no_no_cache_trio(
    client: Client, mint_token: Mint
) -> None:
    response = await client.get(path(mint_token()))
    headers = response.headers
    assert headers["Content-Disposition"] == f'attachment; filename="{SEED_IMAGE}.jpg"'
    assert headers["ETag"].startswith('"')
    assert headers["Cache-Control"] == "private, max-age=3600"
    assert headers["Vary"] == "Accept, Accept-Encoding"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"].startswith("origin-when-cross-origin")
    assert "Pragma" not in headers
    assert "Expires" not in headers
    assert "X-Request-Id" in headers


async def test_max_age_never_outlives_the_token(
    client: Client, mint_token: Mint
) -> None:
    response = await client.get(path(mint_token(ttl=100)))
    max_age = int(response.headers["Cache-Control"].split("=")[1])
    assert 95 <= max_age <= 100


async def test_if_none_match_gives_304(client: Client, mint_token: Mint) -> None:
    token = mint_token()
    etag = (await client.get(path(token))).headers["ETag"]
    response = await client.get(
        path(token), headers={"If-None-Match": f'"x", W/{etag}'}
    )
    assert response.status == 304
    assert response.headers["ETag"] == etag
    assert await response.read() == b""


@pytest.mark.parametrize(("before", "status"), [(31, 304), (32, 200)])
async def test_if_none_match_is_read_to_its_32nd_tag(
    client: Client, mint_token: Mint, before: int, status: int
) -> None:
    """Past it nothing is read: 8 KB of commas took 0.5 ms to read whole."""
    token = mint_token()
    etag = (await client.get(path(token))).headers["ETag"]
    listed = ", ".join([*(f'"{n}"' for n in range(before)), etag])
    response = await client.get(path(token), headers={"If-None-Match": listed})
    assert response.status == status


async def test_etag_is_the_same_for_a_fresh_token_of_the_same_chain(
    client: Client, mint_token: Mint
) -> None:
    first = await client.get(path(mint_token()))
    second = await client.get(path(mint_token()))
    assert first.headers["ETag"] == second.headers["ETag"]
    other = await client.get(path(mint_token([{"crop": "fit", "width": 10}])))
    assert other.headers["ETag"] != first.headers["ETag"]


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        pytest.param("image/avif,image/webp,*/*;q=0.8", "image/webp", id="webp-first"),
        pytest.param("image/avif,*/*", "image/avif", id="avif"),
        pytest.param("image/webp;q=0,*/*", "image/jpeg", id="webp-refused"),
        pytest.param("image/webp;q=0.5,image/avif", "image/avif", id="higher-q-wins"),
        pytest.param(
            "image/avif;q=0.9,image/webp;Q=0.8", "image/avif", id="higher-q-first"
        ),
        pytest.param("image/avif;q=0.5,image/webp;q=0.5", "image/webp", id="q-tie"),
        pytest.param(
            "image/webp;q=0,image/webp;q=0.2", "image/webp", id="listed-twice"
        ),
        # Not qvalues (RFC 9110 §12.4.2): counted as 0, never as infinity.
        pytest.param("image/webp;q=0.5,image/avif;q=inf", "image/webp", id="q-inf"),
        pytest.param("image/avif;q=1.5,*/*", "image/jpeg", id="q-over-1"),
        pytest.param("image/avif;q=0.0001,*/*", "image/jpeg", id="q-4-decimals"),
        pytest.param("*/*", "image/jpeg", id="anything"),
        pytest.param(
            "x/y," * 31 + "image/webp", "image/webp", id="the-32nd-media-range"
        ),
        # Past the first 32 nothing is read: 8 KB of commas took 5 ms.
        pytest.param("," * 32 + "image/webp", "image/jpeg", id="the-33rd"),
        pytest.param(
            "image/webp" + ";a=b" * 3 + ";q=0", "image/jpeg", id="the-4th-parameter"
        ),
        pytest.param(
            "image/webp" + ";a=b" * 4 + ";q=0", "image/webp", id="the-5th-unread"
        ),
    ],
)
async def test_automatic_format_follows_accept(
    client: Client, mint_token: Mint, accept: str, media: str
) -> None:
    response = await client.get(path(mint_token()), headers={"Accept": accept})
    assert response.status == 200
    assert response.content_type == media
    assert picture(await response.read()).size == (2400, 533)
    assert response.headers["Vary"] == "Accept, Accept-Encoding"


async def test_without_f_auto_there_is_no_vary_accept(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
) -> None:
    client = await aiohttp_client(
        create_app(
            replace(
                settings,
                upstream=replace(settings.upstream, base_chain="c_fit,w_1000"),
            )
        )
    )
    response = await client.get(path(mint_token([])), headers={"Accept": "image/webp"})
    assert response.content_type == "image/jpeg"
    assert response.headers["Vary"] == "Accept-Encoding"
    assert "Content-Disposition" not in response.headers
    assert picture(await response.read()).size == (1000, 667)


async def test_head_has_the_headers_and_renders_once(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
) -> None:
    app = create_app(settings)
    client = await aiohttp_client(app)
    token = mint_token()
    head = await client.head(path(token))
    get = await client.get(path(token))
    assert head.status == 200
    assert await head.read() == b""
    for name in ("ETag", "Content-Type", "Content-Length", "Cache-Control"):
        assert head.headers[name] == get.headers[name]
    assert app[RENDERER].renders == 1


async def test_plan_over_the_pixel_budget_is_400_before_rendering(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
) -> None:
    app = create_app(settings)
    client = await aiohttp_client(app)
    steps = [{"crop": "scale", "width": 4096, "height": 4096}] + [
        {
            "overlay": SEED_OVERLAY_1,
            "crop": "scale",
            "width": 4096,
            "height": 4096,
            "x": 4096 * (i + 1),
        }
        for i in range(8)
    ]
    response = await client.get(path(mint_token(steps)))
    await assert_error(response, 400, "output_too_large", pointer="/transformations/1")
    assert app[RENDERER].renders == 0


LONG_WEBP: Final = "44444444-4444-4444-8444-444444444444"  # 16000x10, WebP


_WIDE_OVERLAY: Final = [
    {"crop": "scale", "width": 10, "height": 10},
    {
        "overlay": SEED_OVERLAY_1,
        "crop": "scale",
        "width": 10,
        "height": 10,
        "x": 20000,
    },
]
_GROWN: Final = [
    {
        "overlay": SEED_OVERLAY_1,
        "crop": "scale",
        "width": 10,
        "height": 10,
        "gravity": "west",
        "x": 16380,
    }
]


async def _delivered_with(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
    base_chain: str,
    image: str,
    steps: list[dict[str, object]],
    accept: str | None,
) -> tuple[web.Application, ClientResponse]:
    """The app with `base_chain` (and the long WebP original), and its answer
    to a token for `steps` on `image`."""
    await add_original(
        catalog,
        LocalOriginalStore(settings.originals),
        settings.limits,
        issuer_id=SEED_ISSUER,
        image_id=LONG_WEBP,
        data=solid((16000, 10), RED, "WEBP"),
    )
    app = create_app(
        replace(settings, upstream=replace(settings.upstream, base_chain=base_chain))
    )
    client = await aiohttp_client(app)
    headers = {"Accept": accept} if accept else {}
    return app, await client.get(path(mint_token(steps), image), headers=headers)


@pytest.mark.parametrize(
    ("image", "steps", "base_chain", "accept", "detail"),
    [
        pytest.param(
            SEED_IMAGE,
            [{"width": 1, "height": 2000}, {"crop": "fit", "width": 100}],
            "f_jpg",
            None,
            "step 1 makes a 100x200000 image; JPEG holds at most 65500 pixels a side",
            id="jpeg-100x200000",
        ),
        pytest.param(
            SEED_IMAGE,
            _WIDE_OVERLAY,
            "f_webp",
            "image/webp",
            "WebP holds at most 16383 pixels a side",
            id="webp-named",
        ),
        pytest.param(
            LONG_WEBP,
            _GROWN,
            "f_webp",
            None,
            "step 0 makes a 16390x10 image; WebP holds at most 16383",
            id="webp-original-grown",
        ),
    ],
)
async def test_an_output_longer_than_its_named_format_holds_is_400_before_rendering(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
    image: str,
    steps: list[dict[str, object]],
    base_chain: str,
    accept: str | None,
    detail: str,
) -> None:
    """Within the pixel budget, but past what the chain's format's encoder writes."""
    app, response = await _delivered_with(
        aiohttp_client, settings, catalog, mint_token, base_chain, image, steps, accept
    )
    error = await assert_error(
        response, 400, "output_too_large", pointer=f"/transformations/{len(steps) - 1}"
    )
    assert detail in str(error["detail"])
    assert app[RENDERER].renders == 0


@pytest.mark.parametrize(
    ("image", "steps", "accept", "served"),
    [
        pytest.param(SEED_IMAGE, _WIDE_OVERLAY, "image/webp", "image/jpeg", id="webp-accepted"),
        pytest.param(SEED_IMAGE, _WIDE_OVERLAY, "image/avif", "image/avif", id="avif-holds-it"),
        pytest.param(LONG_WEBP, _GROWN, None, "image/png", id="webp-original-grown"),
    ],
)  # fmt: skip
async def test_a_format_the_gateway_chose_gives_way_to_one_that_holds_the_output(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
    image: str,
    steps: list[dict[str, object]],
    accept: str | None,
    served: str,
) -> None:
    """With f_auto the client never asked for WebP: an output wider than WebP
    holds is the original's own format, or PNG, not a 400."""
    _, response = await _delivered_with(
        aiohttp_client, settings, catalog, mint_token, "f_auto", image, steps, accept
    )
    assert response.status == 200, await response.text()
    assert response.content_type == served
    assert "Accept" in response.headers["Vary"]


async def test_a_stored_original_that_cannot_be_decoded_is_422_and_logged(
    client: Client,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Ingest refuses such a file; one stored otherwise (before it did, a
    restored backup) is a clean error when its pixels are needed, not a 500."""
    data = png_with_data(100, 100, b"not zlib data")
    sha256 = await LocalOriginalStore(settings.originals).put(data)
    record = await catalog.add_image(
        issuer_id=SEED_ISSUER,
        image_id=None,
        cloudinary=None,
        original=Original(
            sha256=sha256,
            media_type="image/png",
            file_size=len(data),
            width=100,
            height=100,
        ),
        original_filename=None,
    )
    response = await client.get(path(mint_token([]), record.id))
    error = await assert_error(response, 422, "source_image_invalid")
    assert "cannot be decoded" in str(error["detail"])
    (logged,) = [r for r in caplog.records if r.name == "gateway.render"]
    assert logged.levelname == "WARNING"
    assert sha256 in logged.getMessage()


async def test_another_issuers_overlay_is_404_in_render_mode(
    client: Client, mint_token: Mint
) -> None:
    response = await client.get(path(mint_token([{"overlay": OTHER_IMAGE}])))
    await assert_error(
        response, 404, "image_not_found", pointer="/transformations/0/overlay"
    )


async def test_image_without_local_original_is_404(
    client: Client, mint_token: Mint, catalog: SqliteCatalog
) -> None:
    from transforms.cloudinary import CloudinaryAsset

    remote = "aaaaaaaa-0000-4000-8000-000000000000"
    await catalog.add_image(
        issuer_id=SEED_ISSUER,
        image_id=remote,
        cloudinary=CloudinaryAsset(public_id="x"),
    )
    response = await client.get(path(mint_token([]), remote))
    await assert_error(response, 404, "image_not_found", parameter="image_id")


class HeldExecutor(ThreadPoolExecutor):
    """Runs jobs only once released: renders pile up deterministically."""

    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.release = threading.Event()

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Future[Any]:
        def held() -> Any:
            self.release.wait(10)
            return fn(*args, **kwargs)

        return super().submit(held)


async def test_full_render_queue_answers_503_with_retry_after(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
) -> None:
    app = create_app(
        replace(settings, render=replace(settings.render, workers=1, queue=1))
    )
    client = await aiohttp_client(app)
    held = HeldExecutor()
    app[RENDERER].executor = held
    tokens = [mint_token([{"crop": "fit", "width": 100 + i}]) for i in range(3)]
    first = [asyncio.ensure_future(client.get(path(t))) for t in tokens[:2]]
    await eventually(lambda: app[RENDERER].in_flight == 2)
    refused = await client.get(path(tokens[2]))
    await assert_error(refused, 503, "overloaded")
    assert refused.headers["Retry-After"] == "1"
    held.release.set()
    assert [r.status for r in await asyncio.gather(*first)] == [200, 200]
    held.shutdown()


async def test_identical_concurrent_renders_run_once(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
) -> None:
    app = create_app(settings)
    client = await aiohttp_client(app)
    responses = await asyncio.gather(
        *(client.get(path(mint_token())) for _ in range(5))
    )
    assert {r.status for r in responses} == {200}
    assert app[RENDERER].renders == 1


async def test_a_render_outlives_the_request_that_started_it(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
) -> None:
    """The client that started a render goes away: those who joined it still
    get the image, not the leader's cancellation."""
    app = create_app(settings)
    await aiohttp_client(app)
    renderer = app[RENDERER]
    held = HeldExecutor()
    renderer.executor = held
    job = renderer.prepare(await app[RESOLVER].resolve(mint_token(), SEED_IMAGE), None)
    leader = asyncio.ensure_future(renderer.render(job))
    await eventually(lambda: renderer.in_flight == 1)
    joiner = asyncio.ensure_future(renderer.render(job))
    await asyncio.sleep(0)
    leader.cancel()
    held.release.set()
    rendered = await joiner
    assert picture(rendered.body).size == (2400, 533)
    assert leader.cancelled()
    assert renderer.renders == 1
    held.shutdown()


async def test_an_image_deleted_while_its_render_waits_is_404(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
) -> None:
    """A render waiting for its turn (the pixel budget) reads its original only
    when its turn comes, and finds it gone."""
    app = create_app(replace(settings, render=replace(settings.render, pixel_budget=1)))
    client = await aiohttp_client(app)
    held = HeldExecutor()
    app[RENDERER].executor = held
    first = asyncio.ensure_future(
        client.get(path(mint_token([{"width": 100}]), SEED_OVERLAY_1))
    )
    await eventually(lambda: app[RENDERER].in_flight == 1)
    waiting = asyncio.ensure_future(client.get(path(mint_token([{"width": 120}]))))
    await eventually(lambda: app[RENDERER].in_flight == 2)
    record = await catalog.image(SEED_IMAGE)
    assert record is not None
    assert record.original is not None
    await LocalOriginalStore(settings.originals).remove(record.original.sha256)
    held.release.set()
    assert (await first).status == 200
    await assert_error(await waiting, 404, "image_not_found")
    held.shutdown()


ROOT = Path(__file__).resolve().parents[3]


def _peak_growth_mb(pixel_budget: int) -> int:
    result = subprocess.run(
        [sys.executable, "-m", "tests.gateway.delivery.rss_renders", str(pixel_budget)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=ROOT,
        # glibc raises its mmap threshold after the first large free (up to
        # 32 MB), and Pillow's 16 MB blocks then come from per-thread arenas
        # that keep them: RSS showed what the allocator kept (72-152 MB for
        # one render at a time, near what four at once took), not what
        # renders hold. A fixed threshold returns each block when freed.
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "MALLOC_MMAP_THRESHOLD_": str(1024 * 1024),
        },
    )
    return int(result.stdout.strip())


def test_the_pixel_budget_bounds_the_memory_of_renders_in_flight() -> None:
    """Four renders of 3000x3000 PNGs (36 MB each decoded) at once: with room
    for one, the process grows by about one; with room for all, by all four."""
    bounded = _peak_growth_mb(10_000_000)
    unbounded = _peak_growth_mb(1_000_000_000)
    # Here 69-70 MB and, as the four overlap more or less, 145-205 MB
    # (`_peak_growth_mb`): with the budget, never a second 36 MB source at once.
    assert bounded < 120, bounded
    assert unbounded > bounded + 40, (bounded, unbounded)


async def test_a_render_larger_than_the_whole_budget_runs_alone(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
) -> None:
    tight = replace(settings, render=replace(settings.render, pixel_budget=1))
    client = await aiohttp_client(create_app(tight))
    responses = await asyncio.gather(
        *(
            client.get(path(mint_token([{"crop": "fit", "width": 50 + i}])))
            for i in range(3)
        )
    )
    assert [r.status for r in responses] == [200, 200, 200]


async def test_a_render_past_its_deadline_answers_503_and_lands_in_the_cache(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
) -> None:
    """A request waits for its render at most GATEWAY_RENDER_TIMEOUT: then 503
    with Retry-After; the render goes on, and the retry gets its picture."""
    app = create_app(replace(settings, render=replace(settings.render, timeout=0.2)))
    client = await aiohttp_client(app)
    renderer = app[RENDERER]
    held = HeldExecutor()
    renderer.executor = held
    token = mint_token([{"crop": "fit", "width": 123}])
    late = await client.get(path(token))
    await assert_error(late, 503, "overloaded")
    assert late.headers["Retry-After"] == "5"
    assert renderer.timeouts == 1
    assert renderer.in_flight == 1  # kept on, not cancelled
    held.release.set()
    await eventually(lambda: renderer.in_flight == 0)
    retry = await client.get(path(token))
    assert retry.status == 200
    assert retry.headers["Content-Type"] == "image/jpeg"
    assert renderer.renders == 1  # the retry came from the cache
    held.shutdown()


async def test_a_renders_own_timeout_is_not_taken_for_the_deadline(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
) -> None:
    """A render that fails with a TimeoutError of its own (a store's read)
    fails as before; only the deadline is answered 503 `overloaded`."""
    app = create_app(settings)
    await aiohttp_client(app)
    renderer = app[RENDERER]

    async def read_timed_out(job: Any) -> Any:
        raise TimeoutError("the store did not answer")

    renderer._render = read_timed_out  # type: ignore[method-assign]
    job = renderer.prepare(await app[RESOLVER].resolve(mint_token(), SEED_IMAGE), None)
    with pytest.raises(TimeoutError, match="the store did not answer"):
        await renderer.render(job)
    assert renderer.timeouts == 0


async def test_a_render_ending_as_its_deadline_passes_is_answered_not_a_500(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
) -> None:
    """The deadline and the render's end in one turn of the loop: the render
    is done, its picture in hand, yet `wait_for` raises its TimeoutError.
    Found by `scripts/load.py` (2 of 4,457 renders were 500s). Each attempt
    here ends at the deadline; every answer is the picture or a 503, never
    the deadline's TimeoutError."""
    app = create_app(settings)
    await aiohttp_client(app)
    renderer = app[RENDERER]
    deadline = 0.002
    renderer.settings = replace(
        settings, render=replace(settings.render, timeout=deadline)
    )
    picture = Rendered(b"picture", "image/png")

    async def ends_at_the_deadline(job: Any) -> Rendered:
        await asyncio.sleep(deadline)
        return picture

    renderer._render = ends_at_the_deadline  # type: ignore[method-assign]
    resolved = await app[RESOLVER].resolve(mint_token(), SEED_IMAGE)
    answers: Counter[str] = Counter()
    for attempt in range(300):
        job = replace(renderer.prepare(resolved, None), etag=f'"{attempt}"')
        try:
            answers["picture" if await renderer.render(job) is picture else "?"] += 1
        except OverloadedError:
            answers["503"] += 1
    assert set(answers) <= {"picture", "503"}, answers


async def test_the_render_cache_counts_each_entrys_own_cost(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
) -> None:
    """Not only its body: renders of a few hundred bytes (anyone may ask IIIF
    for 1x1 regions) each cost as much again in keys and records, and a cache
    counting bodies alone grew the process five times past its bound."""
    small = replace(settings, render=replace(settings.render, cache_bytes=2000))
    app = create_app(small)
    client = await aiohttp_client(app)
    paths = [
        path(mint_token([{"crop": "scale", "width": w, "height": 1}]))
        for w in (1, 2, 3)
    ]
    bodies = [await (await client.get(p)).read() for p in paths]
    assert all(len(body) < 600 for body in bodies)  # three bodies fit in 2000
    assert app[RENDERER].renders == 3
    await client.get(paths[-1])
    assert app[RENDERER].renders == 3  # the newest is cached
    await client.get(paths[0])
    assert app[RENDERER].renders == 4  # the oldest was evicted for the third


@pytest.mark.parametrize(
    ("accept", "at_once", "patience"), [("*/*", 1, 0.2), ("image/webp", 2, 10.0)]
)
async def test_jpeg_encodes_take_turns(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
    monkeypatch: pytest.MonkeyPatch,
    accept: str,
    at_once: int,
    patience: float,
) -> None:
    """Pillow's JPEG encoder holds the GIL: two render threads handing it to
    each other kept the event loop waiting twice as long as one. Other
    encoders release it, and run side by side.

    Each encode waits for the other to join it: a WebP as long as that
    takes, a JPEG briefly, since the other, rightly kept out, never comes."""
    running = most = 0
    lock = threading.Lock()
    both = threading.Event()
    real = pillow_encode

    def encode(out: Decoded, extension: str, quality: int) -> bytes:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            if running == 2:
                both.set()
        both.wait(patience)
        with lock:
            running -= 1
        return real(out, extension, quality)

    monkeypatch.setattr(renderer_module, "encode", encode)
    workers = replace(settings.render, workers=2)
    client = await aiohttp_client(create_app(replace(settings, render=workers)))
    paths = [path(mint_token([{"crop": "scale", "width": w}])) for w in (100, 101)]
    answers = await asyncio.gather(
        *(client.get(p, headers={"Accept": accept}) for p in paths)
    )
    assert [a.status for a in answers] == [200, 200]
    assert most == at_once
