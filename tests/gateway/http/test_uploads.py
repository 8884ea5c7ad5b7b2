"""POST /v1/images: API keys, uploads and every way an upload can be wrong."""

from __future__ import annotations

import asyncio
import hashlib
import io
import socket
import zlib
from collections.abc import AsyncIterator
from dataclasses import replace

import jwt
import pytest
from aiohttp import ClientResponse
from PIL import Image
from pytest_aiohttp import AiohttpClient

from gateway import Settings, create_app
from gateway.catalog import CatalogStore
from signing import IssuerPolicy
from tests.conftest import BOTH_CATALOGS, SEED_ISSUER, Client
from tests.gateway.http.support import (
    Keys,
    bearer,
    document,
    form,
    image_file,
    stored_files,
)
from tests.helpers import assert_error, eventually, stored_bytes
from tests.images import (
    BLUE,
    RED,
    palette_png_with_transparency,
    pixel_bomb,
    png_with_chunk,
    png_with_data,
    solid,
)

pytestmark = BOTH_CATALOGS

JPEG = solid((64, 48), RED, "JPEG")
PNG = solid((30, 20), BLUE, "PNG")


@pytest.mark.parametrize(
    ("headers", "code", "challenge"),
    [
        pytest.param({}, "api_key_missing", "Bearer", id="missing"),
        pytest.param(
            {"Authorization": "Bearer sk_000000000000_nope"},
            "api_key_invalid",
            'Bearer error="invalid_token"',
            id="unknown",
        ),
        pytest.param(
            {"Authorization": "Basic dXNlcjpwYXNz"},
            "api_key_missing",
            "Bearer",
            id="not-bearer",
        ),
        pytest.param(
            {"Authorization": "Bearer "}, "api_key_missing", "Bearer", id="empty-bearer"
        ),
        pytest.param(
            {"Authorization": "Bearer sk_" + "x" * 500},
            "api_key_invalid",
            'Bearer error="invalid_token"',
            id="huge",
        ),
        pytest.param(
            {"Authorization": "Bearer " + "x" * 500},
            "access_token_invalid",
            'Bearer error="invalid_token"',
            id="not-a-token",
        ),
    ],
)
async def test_requests_without_a_valid_key_are_401(
    client: Client, keys: Keys, headers: dict[str, str], code: str, challenge: str
) -> None:
    response = await client.get("/v1/images", headers=headers)
    await assert_error(response, 401, code)
    # RFC 6750 §3.1: an error code only where a credential was sent.
    assert response.headers["WWW-Authenticate"] == challenge


async def test_revoked_key_is_401_at_once(
    client: Client, keys: Keys, catalog: CatalogStore
) -> None:
    assert (await client.get("/v1/images", headers=bearer(keys.mine))).status == 200
    await catalog.revoke_api_key(SEED_ISSUER, keys.mine.split("_")[1])
    response = await client.get("/v1/images", headers=bearer(keys.mine))
    await assert_error(response, 401, "api_key_invalid")


async def test_api_keys_are_stored_only_as_hashes(
    keys: Keys, settings: Settings
) -> None:
    assert keys.mine.encode() not in await stored_bytes(settings)


async def test_upload_creates_the_image(
    client: Client, keys: Keys, settings: Settings
) -> None:
    response = await client.post(
        "/v1/images",
        data=form(image_file(JPEG, "holiday.jpg")),
        headers=bearer(keys.mine),
    )
    assert response.status == 201
    data = await document(response)
    attributes = data["attributes"]
    assert isinstance(attributes, dict)
    assert attributes["mediaType"] == "image/jpeg"
    assert (attributes["width"], attributes["height"]) == (64, 48)
    assert attributes["fileSize"] == len(JPEG)
    assert attributes["originalFilename"] == "holiday.jpg"
    ingest = attributes["ingest"]
    assert isinstance(ingest, dict)
    assert (ingest["state"], ingest["origin"], ingest["error"]) == (
        "finished",
        None,
        None,
    )
    assert response.headers["Location"].endswith(f"/v1/images/{data['id']}")
    assert JPEG in [p.read_bytes() for p in stored_files(settings)]
    links = data["links"]
    assert isinstance(links, dict)
    image = await client.get(
        str(links["delivery"]).removeprefix(str(settings.base_url))
    )
    assert image.status == 200
    thumb = await client.get(
        str(links["thumbnail"]).removeprefix(str(settings.base_url))
    )
    assert Image.open(io.BytesIO(await thumb.read())).size == (200, 200)


async def test_an_image_documents_links_live_within_its_issuers_max_lifetime(
    client: Client, catalog: CatalogStore, settings: Settings
) -> None:
    """An issuer made with `--require-exp --max-lifetime 600` refuses tokens
    living longer: the ready-signed links must not be such tokens."""
    issuer, _ = await catalog.add_issuer(
        policy=IssuerPolicy(require_exp=True, max_lifetime=600)
    )
    key = await catalog.add_api_key(issuer.id)
    response = await client.post(
        "/v1/images", data=form(image_file(JPEG)), headers=bearer(key)
    )
    assert response.status == 201
    links = (await document(response))["links"]
    assert isinstance(links, dict)
    for name in ("delivery", "thumbnail"):
        link = str(links[name])
        claims = jwt.decode(
            link.partition("token=")[2], options={"verify_signature": False}
        )
        assert claims["exp"] - claims["iat"] <= 600
        image = await client.get(link.removeprefix(str(settings.base_url)))
        assert image.status == 200, await image.text()


@pytest.mark.parametrize("link", ["delivery", "thumbnail"])
async def test_an_image_documents_links_open_that_image_only(
    client: Client, keys: Keys, link: str
) -> None:
    """The ready-signed tokens are bound (`sub`): image A's opens no image B."""
    first, second = [
        await document(
            await client.post(
                "/v1/images", data=form(image_file(JPEG)), headers=bearer(keys.mine)
            )
        )
        for _ in range(2)
    ]
    token = str(first["links"][link]).split("token=")[1]
    own = await client.get(f"/images/{first['id']}?token={token}")
    assert own.status == 200
    other = await client.get(f"/images/{second['id']}?token={token}")
    await assert_error(other, 403, "token_subject_mismatch")


async def test_put_uploads_too(client: Client, keys: Keys) -> None:
    response = await client.put(
        "/v1/images",
        data=form(image_file(PNG, "p.png", "image/png")),
        headers=bearer(keys.mine),
    )
    assert response.status == 201


@pytest.mark.parametrize(
    ("data", "declared", "media"),
    [
        pytest.param(JPEG, "image/png", "image/jpeg", id="jpeg-declared-as-png"),
        pytest.param(PNG, "image/jpeg", "image/png", id="png-declared-as-jpeg"),
    ],
)
async def test_media_type_comes_from_the_bytes(
    client: Client, keys: Keys, data: bytes, declared: str, media: str
) -> None:
    response = await client.post(
        "/v1/images",
        data=form(image_file(data, "x.bin", declared)),
        headers=bearer(keys.mine),
    )
    assert response.status == 201
    attributes = (await document(response))["attributes"]
    assert isinstance(attributes, dict)
    assert attributes["mediaType"] == media


@pytest.mark.parametrize(
    ("files", "code"),
    [
        pytest.param([image_file(b"")], "upload_field_invalid", id="empty-file"),
        pytest.param(
            [("file", JPEG, "a.jpg", "image/jpeg")],
            "upload_field_invalid",
            id="wrong-field-name",
        ),
        pytest.param(
            [image_file(b"%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF", "doc.jpg")],
            "media_type_not_allowed",
            id="pdf",
        ),
        pytest.param(
            [image_file(solid((10, 10), RED, "BMP"), "a.bmp", "image/bmp")],
            "media_type_not_allowed",
            id="bmp",
        ),
        pytest.param(
            [image_file(pixel_bomb(20000, 20000), "bomb.png", "image/png")],
            "image_limit_exceeded",
            id="pixel-bomb",
        ),
        pytest.param(
            [image_file(solid((300, 200), RED, "JPEG")[:500])],
            "source_image_invalid",
            id="truncated",
        ),
        pytest.param(
            [image_file(png_with_data(100, 100, b"not zlib data"), "a.png")],
            "source_image_invalid",
            id="png-idat-not-zlib-under-valid-crcs",
        ),
        pytest.param(
            [
                image_file(
                    png_with_data(100, 100, zlib.compress(bytes(301 * 100))[:30]),
                    "a.png",
                )
            ],
            "source_image_invalid",
            id="png-zlib-cut-short-under-valid-crcs",
        ),
        pytest.param(
            [
                image_file(
                    palette_png_with_transparency(b"\x80" * 257, after_pixels=True),
                    "a.png",
                )
            ],
            "source_image_invalid",
            id="palette-transparency-past-256-entries",
        ),
        pytest.param(
            [image_file(png_with_chunk(PNG, b"fcTL", bytes(26)), "a.png")],
            "source_image_invalid",
            id="apng-default-image-framed-empty",
        ),
        pytest.param(
            [
                image_file(
                    png_with_chunk(
                        png_with_chunk(PNG, b"eXIf", b"MM\0*\0\0\0\x08\0\0\0\0\0\0"),
                        b"eXIf",
                        b"MM\0*\0\0\0\x08\0\0\0\0\0\0",
                        after_pixels=True,
                    ),
                    "a.png",
                )
            ],
            "source_image_invalid",
            id="png-two-exif-blocks",
        ),
        pytest.param([], "upload_field_invalid", id="no-file"),
    ],
)
async def test_bad_upload_is_422_and_leaves_nothing(
    client: Client,
    keys: Keys,
    settings: Settings,
    catalog: CatalogStore,
    files: list[tuple[str, bytes, str, str]],
    code: str,
) -> None:
    data = form(*files, fields={"note": "x"})
    response = await client.post("/v1/images", data=data, headers=bearer(keys.mine))
    await assert_error(response, 422, code, pointer="/image")
    assert await catalog.images(SEED_ISSUER) == []
    assert len(stored_files(settings)) == 1  # the other issuer's only
    assert list((settings.data_dir / "uploads").iterdir()) == []


PNG_300 = solid((300, 200), RED, "PNG")


@pytest.mark.parametrize(
    ("data", "name"),
    [
        pytest.param(PNG_300[:8], "a.png", id="png-signature-only"),
        pytest.param(PNG_300[:40], "a.png", id="png-cut-after-header"),
        pytest.param(PNG_300[:-20], "a.png", id="png-cut-in-its-data"),
        pytest.param(JPEG[:20], "a.jpg", id="jpeg-cut-in-its-header"),
        pytest.param(solid((30, 20), RED, "GIF")[:20], "a.gif", id="gif-cut"),
        pytest.param(solid((30, 20), RED, "WEBP")[:12], "a.webp", id="webp-cut"),
    ],
)
async def test_a_truncated_file_of_an_allowed_type_is_422_saying_so(
    client: Client, keys: Keys, data: bytes, name: str
) -> None:
    response = await client.post(
        "/v1/images", data=form(image_file(data, name)), headers=bearer(keys.mine)
    )
    error = await assert_error(response, 422, "source_image_invalid", pointer="/image")
    assert "truncated" in str(error["detail"]).lower()


@pytest.mark.parametrize(
    "side",
    [
        pytest.param(10000, id="past-pillows-warning"),
        pytest.param(20000, id="past-pillows-error"),
    ],
)
async def test_a_pixel_bomb_is_refused_in_the_gateways_words(
    client: Client, keys: Keys, side: int
) -> None:
    data = form(image_file(pixel_bomb(side, side), "bomb.png", "image/png"))
    response = await client.post("/v1/images", data=data, headers=bearer(keys.mine))
    error = await assert_error(response, 422, "image_limit_exceeded", pointer="/image")
    detail = str(error["detail"])
    assert detail.endswith("at most 50000000 are accepted")  # GATEWAY_MAX_SOURCE_PIXELS
    assert "bomb" not in detail


async def test_two_files_are_refused(
    client: Client, keys: Keys, catalog: CatalogStore
) -> None:
    data = form(image_file(JPEG), image_file(PNG, "b.png", "image/png"))
    response = await client.post("/v1/images", data=data, headers=bearer(keys.mine))
    error = await assert_error(response, 422, "upload_field_invalid", pointer="/image")
    assert "exactly one" in str(error["detail"])
    assert await catalog.images(SEED_ISSUER) == []


async def test_several_violations_give_several_errors(
    client: Client, keys: Keys
) -> None:
    data = form(("file", JPEG, "a.jpg", "image/jpeg"), image_file(b""))
    response = await client.post("/v1/images", data=data, headers=bearer(keys.mine))
    assert response.status == 422
    errors = (await response.json(content_type=None))["errors"]
    assert len(errors) == 2
    assert {e["source"]["pointer"] for e in errors} == {"/image"}


@pytest.mark.parametrize(
    ("slack", "status"),
    [
        pytest.param(0, 201, id="exactly-at-limit"),
        pytest.param(-1, 422, id="one-byte-over"),
    ],
)
async def test_size_limit_is_exact(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: CatalogStore,
    keys: Keys,
    slack: int,
    status: int,
) -> None:
    client = await aiohttp_client(
        create_app(
            replace(
                settings,
                ingest=replace(settings.ingest, max_upload_bytes=len(JPEG) + slack),
            )
        )
    )
    response = await client.post(
        "/v1/images", data=form(image_file(JPEG)), headers=bearer(keys.mine)
    )
    assert response.status == status
    if status == 422:
        error = await assert_error(response, 422, "file_too_large", pointer="/image")
        assert f"({len(JPEG)} bytes" in str(error["detail"])
        assert f"maximum size is {len(JPEG) - 1} bytes" in str(error["detail"])


async def test_unsupported_body_is_415(client: Client, keys: Keys) -> None:
    response = await client.post(
        "/v1/images",
        data=b"raw",
        headers={**bearer(keys.mine), "Content-Type": "image/jpeg"},
    )
    await assert_error(response, 415, "content_type_unsupported")


async def test_guest_uploads_are_off_by_default(client: Client) -> None:
    response = await client.post("/v1/images", data=form(image_file(JPEG)))
    await assert_error(response, 401, "api_key_missing")


async def test_guest_uploads_land_in_the_guest_issuer_with_a_smaller_limit(
    aiohttp_client: AiohttpClient, settings: Settings, catalog: CatalogStore
) -> None:
    guest = replace(
        settings,
        ingest=replace(
            settings.ingest,
            guest_uploads=True,
            guest_issuer=SEED_ISSUER,
            guest_max_upload_bytes=len(JPEG),
        ),
    )
    client = await aiohttp_client(create_app(guest))
    assert (await client.post("/v1/images", data=form(image_file(JPEG)))).status == 201
    assert len(await catalog.images(SEED_ISSUER)) == 1
    big = JPEG + b"\0"
    await assert_error(
        await client.post("/v1/images", data=form(image_file(big, "b.png"))),
        422,
        "file_too_large",
    )
    await assert_error(await client.get("/v1/images"), 401, "api_key_missing")
    error = await assert_error(
        await client.post("/v1/images", json={"origin": "https://example.org/a.png"}),
        401,
        "api_key_missing",
    )
    assert "guests may upload, not ingest" in str(error["detail"])


async def test_interrupted_upload_leaves_no_file_and_no_row(
    client: Client, keys: Keys, settings: Settings, catalog: CatalogStore
) -> None:
    boundary = "cut-here"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    request = (
        (
            f"POST /v1/images HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {keys.mine}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 100000\r\n\r\n"
        ).encode()
        + head
        + JPEG[: len(JPEG) // 2]
    )
    assert client.server.port is not None
    uploads = settings.data_dir / "uploads"
    with socket.create_connection(("127.0.0.1", client.server.port)) as sock:
        sock.sendall(request)
        await eventually(lambda: any(uploads.iterdir()))  # spooling the part now
    await eventually(lambda: not any(uploads.iterdir()))  # client gone: spool too
    await asyncio.sleep(0.1)
    assert await catalog.images(SEED_ISSUER) == []
    assert len(stored_files(settings)) == 1  # the other issuer's only


async def test_200_concurrent_uploads_lose_none_and_corrupt_none(
    aiohttp_client: AiohttpClient,
    keys: Keys,
    settings: Settings,
    catalog: CatalogStore,
) -> None:
    """With room for all of them at once (the in-flight bounds are tested apart)."""
    roomy = replace(
        settings,
        ingest=replace(settings.ingest, uploads_per_key=200, uploads_in_flight=200),
    )
    client = await aiohttp_client(create_app(roomy))
    originals = [
        solid((16, 16), (i, 255 - i, (7 * i) % 256), "PNG") for i in range(200)
    ]

    async def upload(data: bytes) -> str:
        response = await client.post(
            "/v1/images",
            data=form(image_file(data, "t.png", "image/png")),
            headers=bearer(keys.mine),
        )
        assert response.status == 201, await response.text()
        return str((await document(response))["id"])

    ids = await asyncio.gather(*(upload(d) for d in originals))
    assert len(set(ids)) == 200
    records = {r.id: r for r in await catalog.images(SEED_ISSUER)}
    assert set(records) == set(ids)
    store = settings.originals
    for image_id, data in zip(ids, originals, strict=True):
        original = records[image_id].original
        assert original is not None
        assert original.sha256 == hashlib.sha256(data).hexdigest()
        assert (store / original.sha256[:2] / original.sha256).read_bytes() == data


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        pytest.param("multipart/form-data", b"garbage", id="no-boundary"),
        pytest.param("multipart/form-data; boundary=x", b"garbage", id="no-start"),
        pytest.param(
            "multipart/form-data; boundary=x",
            b"--x\r\nContent-Disposition: form-data; name=image; filename=a\r\n\r\nabc",
            id="cut-short",
        ),
        pytest.param(
            "multipart/form-data; boundary=x",
            b"--x\r\n\xc3\xbb\xc2\xa2\xc3\xbb--x--\r\n",
            id="part-header-garbage",
        ),
        pytest.param(
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="image"; filename="a\x00.png"\r\n\r\nabc\r\n--x--\r\n',
            id="nul-in-a-part-header",
        ),
    ],
)
async def test_malformed_multipart_is_400(
    client: Client, keys: Keys, settings: Settings, content_type: str, body: bytes
) -> None:
    headers = {**bearer(keys.mine), "Content-Type": content_type}
    response = await client.post("/v1/images", data=body, headers=headers)
    error = await assert_error(response, 400, "bad_request")
    assert list((settings.data_dir / "uploads").iterdir()) == []
    # What the client sent is not quoted back (aiohttp's message would).
    assert "a\x00" not in str(error["detail"])
    assert "filename" not in str(error["detail"])


async def test_uploads_in_flight_are_bounded_per_key_and_in_all(
    aiohttp_client: AiohttpClient, keys: Keys, settings: Settings
) -> None:
    """Stalled uploads hold their places: past a key's bound 429, past all 503."""
    bounded = replace(
        settings,
        ingest=replace(settings.ingest, uploads_per_key=2, uploads_in_flight=3),
    )
    client = await aiohttp_client(create_app(bounded))
    release = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield b"--x\r\nContent-Disposition: form-data; name=image; filename=a\r\n\r\n"
        await release.wait()
        yield JPEG + b"\r\n--x--\r\n"

    def start(key: str) -> asyncio.Future[ClientResponse]:
        return asyncio.ensure_future(
            client.post(
                "/v1/images",
                data=stalled(),
                headers={
                    **bearer(key),
                    "Content-Type": "multipart/form-data; boundary=x",
                },
            )
        )

    # Admitted uploads spool what they read: each holds a place once its file is there.
    spooled = bounded.data_dir / "uploads"
    held = [start(keys.mine), start(keys.mine)]
    await eventually(lambda: len(list(spooled.iterdir())) == 2)
    third = await client.post(
        "/v1/images", data=form(image_file(JPEG)), headers=bearer(keys.mine)
    )
    await assert_error(third, 429, "too_many_requests")
    assert third.headers["Retry-After"] == "1"
    held.append(start(keys.other))
    await eventually(lambda: len(list(spooled.iterdir())) == 3)
    fourth = await client.post(
        "/v1/images", data=form(image_file(JPEG)), headers=bearer(keys.other)
    )
    await assert_error(fourth, 503, "overloaded")
    release.set()
    assert [r.status for r in await asyncio.gather(*held)] == [201, 201, 201]


async def test_a_body_slower_than_the_timeout_is_408_and_leaves_nothing(
    aiohttp_client: AiohttpClient,
    keys: Keys,
    settings: Settings,
    catalog: CatalogStore,
) -> None:
    impatient = replace(settings, ingest=replace(settings.ingest, body_timeout=0.3))
    client = await aiohttp_client(create_app(impatient))

    async def trickle() -> AsyncIterator[bytes]:
        yield b"--x\r\nContent-Disposition: form-data; name=image; filename=a\r\n\r\n"
        for byte in JPEG[:50]:
            await asyncio.sleep(0.05)
            yield bytes([byte])

    response = await client.post(
        "/v1/images",
        data=trickle(),
        headers={
            **bearer(keys.mine),
            "Content-Type": "multipart/form-data; boundary=x",
        },
    )
    await assert_error(response, 408, "request_timeout")
    assert await catalog.images(SEED_ISSUER) == []
    assert list(settings.uploads.iterdir()) == []


async def test_an_upload_whose_key_is_revoked_meanwhile_lands_nowhere(
    client: Client, keys: Keys, settings: Settings, catalog: CatalogStore
) -> None:
    release = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield b"--x\r\nContent-Disposition: form-data; name=image; filename=a\r\n\r\n"
        await release.wait()
        yield JPEG + b"\r\n--x--\r\n"

    uploading = asyncio.ensure_future(
        client.post(
            "/v1/images",
            data=stalled(),
            headers={
                **bearer(keys.mine),
                "Content-Type": "multipart/form-data; boundary=x",
            },
        )
    )
    await asyncio.sleep(0.2)
    await catalog.revoke_api_key(SEED_ISSUER, keys.mine.split("_")[1])
    release.set()
    await assert_error(await uploading, 401, "api_key_invalid")
    assert await catalog.images(SEED_ISSUER) == []
    assert JPEG not in [p.read_bytes() for p in stored_files(settings)]


async def test_a_body_of_many_parts_is_refused_after_a_few(
    client: Client, keys: Keys
) -> None:
    fields = {f"note{i}": "x" for i in range(20_000)}
    response = await client.post(
        "/v1/images",
        data=form(image_file(JPEG), fields=fields),
        headers=bearer(keys.mine),
    )
    assert response.status == 422
    errors = (await response.json(content_type=None))["errors"]
    assert len(errors) <= 20
    assert len(await response.read()) < 10_000


async def test_a_declared_length_far_past_the_limit_is_refused_unread(
    client: Client, keys: Keys, settings: Settings
) -> None:
    huge = 50 * settings.ingest.max_upload_bytes

    async def endless() -> AsyncIterator[bytes]:
        yield b"--x\r\nContent-Disposition: form-data; name=image; filename=a\r\n\r\n"
        while True:
            await asyncio.sleep(0.01)
            yield b"\0" * 65536

    response = await client.post(
        "/v1/images",
        data=endless(),
        headers={
            **bearer(keys.mine),
            "Content-Type": "multipart/form-data; boundary=x",
            "Content-Length": str(huge),
        },
    )
    await assert_error(response, 422, "file_too_large", pointer="/image")


def _one_part(disposition: str, data: bytes) -> tuple[bytes, str]:
    """A multipart body of one part with this Content-Disposition, and its type."""
    body = (
        (
            f"--cut\r\nContent-Disposition: {disposition}\r\n"
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + b"\r\n--cut--\r\n"
    )
    return body, "multipart/form-data; boundary=cut"


@pytest.mark.parametrize(
    ("disposition", "status"),
    [
        pytest.param(
            'form-data; name="image"; filename="a.jpg"' + ";" * 7000,
            422,  # aiohttp took 13 ms to read it, and read it three times
            id="thousands-of-parameters",
            # aiohttp warns of each empty one; `serve` ignores those warnings.
            marks=pytest.mark.filterwarnings(
                "ignore::aiohttp.BadContentDispositionHeader"
            ),
        ),
        pytest.param(
            'form-data; name="image"; filename="a.jpg"'
            + "".join(f"; a{n}=b" for n in range(7)),
            422,
            id="nine-parameters",
        ),
        pytest.param(
            'form-data; name="image"; filename="' + "a" * 2010 + '.jpg"',
            422,
            id="over-2048-characters",
        ),
        pytest.param(
            "form-data; name=\"image\"; filename*=utf-8''" + "%C3%A9" * 127 + ".jpg",
            201,  # a 255-byte name, every byte percent-encoded
            id="the-longest-file-name",
        ),
        pytest.param(
            'form-data; name="image"; filename="a.jpg"'
            + "".join(f"; a{n}=b" for n in range(6)),
            201,
            id="eight-parameters",
        ),
    ],
)
async def test_a_parts_content_disposition_is_bounded(
    client: Client, keys: Keys, disposition: str, status: int
) -> None:
    body, content_type = _one_part(disposition, JPEG)
    response = await client.post(
        "/v1/images",
        data=body,
        headers={**bearer(keys.mine), "Content-Type": content_type},
    )
    if status == 201:
        assert response.status == 201, await response.text()
    else:
        error = await assert_error(
            response, 422, "upload_field_invalid", pointer="/image"
        )
        assert "Content-Disposition is at most 2048 characters" in str(error["detail"])
