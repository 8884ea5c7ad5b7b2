"""GET/PATCH/DELETE /v1/images, listing, origin ingest, Cloudinary, tenant isolation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aioresponses import CallbackResult, aioresponses
from pytest_aiohttp import AiohttpClient, AiohttpServer
from yarl import URL

from gateway import Settings, create_app
from gateway.catalog import CatalogStore, ImageChangedError, ImageRecord
from gateway.cloudinary.admin import signed_params
from gateway.errors import OriginalsUnavailableError
from gateway.keys import INGESTOR, STORE
from gateway.originals.ingest import add_original
from gateway.originals.local import LocalOriginalStore
from signing import mint, minting_remembers
from tests.conftest import BOTH_CATALOGS, OTHER_IMAGE, SEED_ISSUER, SEED_KEY, Client
from tests.gateway.http.support import (
    Keys,
    MockedResponse,
    bearer,
    document,
    form,
    image_file,
    stored_files,
)
from tests.helpers import assert_error
from tests.images import RED, pixel_bomb, solid
from transforms.cloudinary import CloudinaryAccount

pytestmark = BOTH_CATALOGS

JPEG = solid((64, 48), RED, "JPEG")


async def add(
    catalog: CatalogStore, settings: Settings, n: int, **kwargs: object
) -> list[ImageRecord]:
    store = LocalOriginalStore(settings.originals)
    return [
        await add_original(
            catalog,
            store,
            settings.limits,
            issuer_id=SEED_ISSUER,
            data=solid((8 + i, 8), (i, 0, 0), "PNG"),
            filename=f"file-{i:02d}.png",
            **kwargs,  # type: ignore[arg-type]
        )
        for i in range(n)
    ]


async def get_json(client: Client, path: str, key: str) -> dict[str, Any]:
    """`path`, or a link's URL (under the public URL) followed here."""
    url = URL(path)
    response = await client.get(
        url.raw_path_qs if url.absolute else path, headers=bearer(key)
    )
    assert response.status == 200, await response.text()
    doc = await response.json(content_type=None)
    assert isinstance(doc, dict)
    return doc


def attrs(data: dict[str, object]) -> dict[str, Any]:
    value = data["attributes"]
    assert isinstance(value, dict)
    return value


def ids(doc: dict[str, object]) -> list[str]:
    data = doc["data"]
    assert isinstance(data, list)
    return [item["id"] for item in data]


# Read


async def test_get_returns_every_field(
    client: Client, keys: Keys, catalog: CatalogStore, settings: Settings
) -> None:
    (record,) = await add(catalog, settings, 1)
    doc = await get_json(client, f"/v1/images/{record.id}", keys.mine)
    data = doc["data"]
    assert isinstance(data, dict)
    assert data["type"] == "images"
    assert set(data["attributes"]) == {
        "originalFilename", "description", "mediaType", "fileSize", "width", "height",
        "isPublic", "tags", "text1", "text2", "text3", "number1", "number2", "number3",
        "maxUnauthorised", "roles", "createdAt", "updatedAt", "ingest", "cloudinary",
    }  # fmt: skip
    assert set(data["links"]) == {"self", "delivery", "thumbnail"}


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_another_issuers_image_is_always_404(
    client: Client, keys: Keys, catalog: CatalogStore, method: str
) -> None:
    response = await client.request(
        method,
        f"/v1/images/{OTHER_IMAGE}",
        headers=bearer(keys.mine),
        json={"description": "x"},
    )
    await assert_error(response, 404, "image_not_found")
    untouched = await catalog.image(OTHER_IMAGE)
    assert untouched is not None
    assert untouched.description == ""


async def test_unknown_image_is_404_like_a_foreign_one(
    client: Client, keys: Keys
) -> None:
    for image in ("00000000-0000-4000-8000-000000000000", "not-an-id"):
        response = await client.get(f"/v1/images/{image}", headers=bearer(keys.mine))
        await assert_error(response, 404, "image_not_found")


# List


async def test_list_pages_through_everything_once(
    client: Client, keys: Keys, catalog: CatalogStore, settings: Settings
) -> None:
    created = await add(catalog, settings, 25)
    seen: list[str] = []
    path: str | None = "/v1/images?page[size]=10"
    pages = 0
    while path:
        doc = await get_json(client, path, keys.mine)
        assert doc["meta"] == {"total": 25}
        seen += ids(doc)
        links = doc["links"]
        assert isinstance(links, dict)
        path = links.get("next")
        pages += 1
    assert pages == 3
    assert seen == [r.id for r in reversed(created)]  # -createdAt by default


async def test_prev_links_walk_back(
    client: Client, keys: Keys, catalog: CatalogStore, settings: Settings
) -> None:
    await add(catalog, settings, 12)
    first = await get_json(client, "/v1/images?page[size]=5", keys.mine)
    second = await get_json(client, first["links"]["next"], keys.mine)
    back = await get_json(client, second["links"]["prev"], keys.mine)
    assert ids(back) == ids(first)
    assert "prev" not in first["links"]
    # `self` encoded as `next` and `prev` are
    assert first["links"]["self"] == "http://127.0.0.1:8080/v1/images?page%5Bsize%5D=5"


async def test_pagination_is_stable_under_concurrent_inserts(
    client: Client, keys: Keys, catalog: CatalogStore, settings: Settings
) -> None:
    created = await add(catalog, settings, 6)
    first = await get_json(client, "/v1/images?page[size]=3&sort=createdAt", keys.mine)
    await add(catalog, settings, 2)  # newer rows arrive between the pages
    second = await get_json(client, first["links"]["next"], keys.mine)
    assert ids(first) + ids(second)[:3] == [r.id for r in created]


@pytest.mark.parametrize(
    ("sort", "reverse"), [("fileSize", False), ("-fileSize", True)]
)
async def test_sort_by_file_size(
    client: Client,
    keys: Keys,
    catalog: CatalogStore,
    settings: Settings,
    sort: str,
    reverse: bool,
) -> None:
    records = await add(catalog, settings, 5)
    doc = await get_json(client, f"/v1/images?sort={sort}", keys.mine)
    sizes = {r.id: r.original.file_size for r in records if r.original}
    expected = sorted(records, key=lambda r: (sizes[r.id], r.id), reverse=reverse)
    assert ids(doc) == [r.id for r in expected]


@pytest.mark.parametrize(
    ("made_for", "used_with"),
    [
        ("fileSize", ""),  # the default, -createdAt
        ("fileSize", "&sort=-fileSize"),
        ("-createdAt", "&sort=createdAt"),
        ("-updatedAt", "&sort=-createdAt"),
    ],
)
async def test_a_cursor_pages_only_the_order_it_was_made_in(
    client: Client,
    keys: Keys,
    catalog: CatalogStore,
    settings: Settings,
    made_for: str,
    used_with: str,
) -> None:
    """A position in one order is none in another (a file size read as a
    time): a wrong page would be a 200, so the cursor is refused."""
    await add(catalog, settings, 5)
    first = await get_json(
        client, f"/v1/images?sort={made_for}&page[size]=2", keys.mine
    )
    cursor = first["links"]["next"].rpartition("page%5Bafter%5D=")[2]
    same = await get_json(
        client,
        f"/v1/images?sort={made_for}&page[size]=2&page[after]={cursor}",
        keys.mine,
    )
    assert len(same["data"]) == 2
    response = await client.get(
        f"/v1/images?page[after]={cursor}{used_with}", headers=bearer(keys.mine)
    )
    error = await assert_error(
        response, 400, "parameter_invalid", parameter="page[after]"
    )
    assert f"sort={made_for}" in str(error["detail"])


async def test_search_tag_and_id_filters_find_only_the_callers_matches(
    client: Client, keys: Keys, catalog: CatalogStore, settings: Settings
) -> None:
    records = await add(catalog, settings, 4)
    await catalog.update_image(
        records[1].id, {"tags": ["beach"], "description": "Sunset 100% orange"}
    )
    search = await get_json(client, "/v1/images?filter[search]=100%25", keys.mine)
    assert ids(search) == [records[1].id]
    assert (await get_json(client, "/v1/images?filter[search]=file-03", keys.mine))[
        "meta"
    ] == {"total": 1}
    assert ids(await get_json(client, "/v1/images?filter[tag]=beach", keys.mine)) == [
        records[1].id
    ]
    wanted = f"{records[0].id},{records[2].id},{OTHER_IMAGE}"
    batch = await get_json(client, f"/v1/images?filter[id]={wanted}", keys.mine)
    assert sorted(ids(batch)) == sorted(
        [records[0].id, records[2].id]
    )  # never the other issuer's


async def test_search_never_finds_another_issuers_images(
    client: Client, keys: Keys
) -> None:
    doc = await get_json(client, "/v1/images?filter[search]=holiday", keys.mine)
    assert doc["meta"] == {"total": 0}


def _ids(n: int) -> str:
    return ",".join(str(uuid.UUID(int=i + 1, version=4)) for i in range(n))


def _cursor(position: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


async def test_a_filter_of_100_ids_is_the_most_accepted(
    client: Client, keys: Keys
) -> None:
    doc = await get_json(client, f"/v1/images?filter[id]={_ids(100)},", keys.mine)
    assert doc["data"] == []
    # Empty entries are no ids (the OpenAPI pattern allows them), however many.
    spaced = " , ,".join(_ids(100).split(","))
    doc = await get_json(
        client, f"/v1/images?filter[id]=,,{spaced},{',' * 5000}", keys.mine
    )
    assert doc["data"] == []


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        pytest.param("page[size]=0", "page[size]", id="size-zero"),
        pytest.param("page[size]=101", "page[size]", id="size-over"),
        pytest.param("page[size]=%C2%B2", "page[size]", id="superscript-two"),
        # int() of over 4300 digits raises (it was a 500)
        pytest.param(
            "page[size]=" + "9" * 5000, "page[size]", id="thousands-of-digits"
        ),
        pytest.param("filter[tag]=" + "t" * 65, "filter[tag]", id="tag-too-long"),
        pytest.param("page[size]=%D9%A3", "page[size]", id="arabic-indic-three"),
        pytest.param("page[after]=bm9wZQ", "page[after]", id="bad-cursor"),
        pytest.param("sort=name", "sort", id="bad-sort"),
        pytest.param("filter[id]=x,y", "filter[id]", id="bad-ids"),
        pytest.param("filter[id]=" + _ids(101), "filter[id]", id="101-ids"),
        # Read no further than the 101st: a 48 KB list took 5 ms to read whole.
        pytest.param("filter[id]=" + _ids(1300), "filter[id]", id="1300-ids"),
        pytest.param("filter[id]=" + "," * 40_000, "filter[id]", id="commas"),
        # PostgreSQL's text holds no NUL: each was a 500 there.
        pytest.param("filter[search]=a%00b", "filter[search]", id="nul-in-search"),
        pytest.param("filter[tag]=a%00b", "filter[tag]", id="nul-in-tag"),
        pytest.param(
            "page[after]=" + _cursor(["-createdAt", "2026\u0000", OTHER_IMAGE]),
            "page[after]",
            id="nul-in-cursor-position",
        ),
        pytest.param(
            "page[before]=" + _cursor(["-createdAt", "2026", "a\u0000b"]),
            "page[before]",
            id="nul-in-cursor-id",
        ),
    ],
)
async def test_bad_list_parameters_are_400(
    client: Client, keys: Keys, query: str, parameter: str
) -> None:
    response = await client.get(f"/v1/images?{query}", headers=bearer(keys.mine))
    await assert_error(response, 400, "parameter_invalid", parameter=parameter)


@pytest.mark.parametrize(
    ("listed", "named"),
    [
        (f"{OTHER_IMAGE},nope", "'nope'"),
        (f"nope, {OTHER_IMAGE}", "'nope'"),
        (f"{OTHER_IMAGE},{'x' * 60}", f"'{'x' * 40}…'"),
    ],
)
async def test_a_bad_id_in_a_list_is_named(
    client: Client, keys: Keys, listed: str, named: str
) -> None:
    response = await client.get(
        "/v1/images", params={"filter[id]": listed}, headers=bearer(keys.mine)
    )
    error = await assert_error(
        response, 400, "parameter_invalid", parameter="filter[id]"
    )
    assert error["detail"] == f"{named} is not an image id (a UUID)"


_LISTING: Final = {
    parameter["name"]: parameter["schema"]
    for parameter in json.loads(
        (Path(__file__).parents[3] / "gateway" / "openapi.json").read_text()
    )["paths"]["/v1/images"]["get"]["parameters"]
}


@pytest.mark.parametrize(
    ("parameter", "value", "accepted"),
    [
        ("filter[tag]", "t" * 64, True),
        ("filter[tag]", "t" * 65, False),
        ("filter[tag]", "a\x00b", False),
        ("filter[search]", "s" * 200, True),
        ("filter[search]", "s" * 201, False),
        ("filter[search]", "a\x00b", False),
    ],
)
async def test_the_document_allows_exactly_the_text_filters_accepted(
    client: Client, keys: Keys, parameter: str, value: str, accepted: bool
) -> None:
    """schemathesis sends what the document allows and expects it accepted:
    a tag with a NUL, or of 65 characters, was allowed there and refused here."""
    schema = _LISTING[parameter]
    documented = (
        len(value) <= schema.get("maxLength", len(value))
        and re.search(schema.get("pattern", ""), value) is not None
    )
    response = await client.get(
        "/v1/images", params={parameter: value}, headers=bearer(keys.mine)
    )
    assert (documented, response.status == 200) == (accepted, accepted)


@pytest.mark.parametrize(
    ("method", "target", "parameter", "code"),
    [
        # A mistyped filter would otherwise list every image.
        ("GET", "/v1/images?filter[tags]=beach", "filter[tags]", "parameter_invalid"),
        ("GET", "/v1/images?include=owner", "include", "parameter_invalid"),
        (
            "GET",
            "/v1/images?fields[images]=width",
            "fields[images]",
            "parameter_invalid",
        ),
        ("GET", "/v1/images?page[number]=2", "page[number]", "parameter_invalid"),
        ("GET", "/v1/images?SORT=fileSize", "SORT", "parameter_invalid"),
        (
            "GET",
            "/v1/images?sort=fileSize&sort=-fileSize",
            "sort",
            "parameter_ambiguous",
        ),
        ("GET", "/v1/images/{id}?include=owner", "include", "parameter_invalid"),
        ("PATCH", "/v1/images/{id}?dryRun=true", "dryRun", "parameter_invalid"),
        ("DELETE", "/v1/images/{id}?preserve=true", "preserve", "parameter_invalid"),
        (
            "DELETE",
            "/v1/images/{id}?preserveOnDisk=true&preserveOnDisk=false",
            "preserveOnDisk",
            "parameter_ambiguous",
        ),
        ("POST", "/v1/images?public=true", "public", "parameter_invalid"),
        ("PUT", "/v1/images?%C3%A9=1", "\u00e9", "parameter_invalid"),
    ],
)
async def test_a_parameter_the_endpoint_does_not_take_is_400_not_ignored(
    client: Client,
    keys: Keys,
    catalog: CatalogStore,
    settings: Settings,
    method: str,
    target: str,
    parameter: str,
    code: str,
) -> None:
    (record,) = await add(catalog, settings, 1)
    body = (
        {"description": "changed"}
        if method == "PATCH"
        else {"origin": "https://example.com/a.jpg"}
    )
    response = await client.request(
        method,
        target.format(id=record.id),
        headers=bearer(keys.mine),
        json=body if method in ("PATCH", "POST", "PUT") else None,
    )
    await assert_error(response, 400, code, parameter=parameter)
    # Refused before anything happened.
    after = await catalog.image(record.id)
    assert after is not None
    assert after.description == record.description


# Update


async def test_patch_merges_mutable_fields(
    client: Client, keys: Keys, catalog: CatalogStore, settings: Settings
) -> None:
    (record,) = await add(catalog, settings, 1)
    changes = {
        "description": "a cat",
        "isPublic": True,
        "tags": ["cats", "cats", "pets"],
        "text1": "ref-7",
        "number1": 3,
        "number2": 2.5,
        "maxUnauthorised": 400,
    }
    response = await client.patch(
        f"/v1/images/{record.id}", json=changes, headers=bearer(keys.mine)
    )
    assert response.status == 200
    attributes = (await document(response))["attributes"]
    assert isinstance(attributes, dict)
    assert attributes["tags"] == ["cats", "pets"]
    assert (
        attributes["description"],
        attributes["isPublic"],
        attributes["text1"],
        attributes["number2"],
        attributes["maxUnauthorised"],
    ) == ("a cat", True, "ref-7", 2.5, 400)
    # As given: a whole number is not written back as 3.0.
    assert json.dumps(attributes["number1"]) == "3"
    assert attributes["updatedAt"] > attributes["createdAt"]
    again = await client.patch(
        f"/v1/images/{record.id}",
        json={"data": {"type": "images", "attributes": {"text1": None}}},
        headers=bearer(keys.mine),
    )
    attributes = (await document(again))["attributes"]
    assert isinstance(attributes, dict)
    assert (attributes["text1"], attributes["description"]) == (None, "a cat")


async def test_patch_refuses_unknown_read_only_and_invalid_fields_each(
    client: Client, keys: Keys, catalog: CatalogStore, settings: Settings
) -> None:
    (record,) = await add(catalog, settings, 1)
    body = {"width": 5, "colour": "red", "isPublic": "yes", "tags": ["ok", "bad/tag"]}
    response = await client.patch(
        f"/v1/images/{record.id}", json=body, headers=bearer(keys.mine)
    )
    assert response.status == 422
    errors = (await response.json(content_type=None))["errors"]
    assert {(e["code"], e["source"]["pointer"]) for e in errors} == {
        ("field_read_only", "/width"),
        ("field_unknown", "/colour"),
        ("field_invalid", "/isPublic"),
        ("field_invalid", "/tags"),
    }
    assert await catalog.image(record.id) == record


async def test_patch_refuses_a_nul_in_text_as_every_catalog_would(
    client: Client, keys: Keys, catalog: CatalogStore, settings: Settings
) -> None:
    """PostgreSQL's text holds no NUL (each was a 500 there); SQLite's would."""
    (record,) = await add(catalog, settings, 1)
    body = {"description": "a\u0000b", "text2": "\u0000"}
    response = await client.patch(
        f"/v1/images/{record.id}", json=body, headers=bearer(keys.mine)
    )
    assert response.status == 422
    errors = (await response.json(content_type=None))["errors"]
    assert {(e["code"], e["source"]["pointer"]) for e in errors} == {
        ("field_invalid", "/description"),
        ("field_invalid", "/text2"),
    }
    assert await catalog.image(record.id) == record


@pytest.mark.parametrize(
    ("body", "status", "code", "pointer"),
    [
        pytest.param(
            {"data": {"type": "cats", "attributes": {"description": "a"}}},
            409, "resource_conflict", "/data/type", id="another-type",
        ),
        pytest.param(
            {"data": {"id": OTHER_IMAGE, "attributes": {"description": "a"}}},
            409, "resource_conflict", "/data/id", id="another-id",
        ),
        pytest.param(
            {"data": {"id": 7, "attributes": {"description": "a"}}},
            409, "resource_conflict", "/data/id", id="id-not-text",
        ),
        pytest.param(
            {"data": {"attributes": {"description": "a"}}, "description": "b"},
            422, "field_unknown", "/description", id="member-beside-data",
        ),
        pytest.param(
            {"data": {"attributes": {}, "relationships": {}}},
            422, "field_unknown", "/data/relationships", id="member-beside-attributes",
        ),
        pytest.param(
            {"data": [1]}, 422, "field_invalid", "/data", id="data-not-an-object",
        ),
        pytest.param(
            {"data": {"attributes": []}},
            422, "field_invalid", "/data/attributes", id="attributes-not-an-object",
        ),
    ],
)  # fmt: skip
async def test_a_patch_document_changes_only_this_image_and_says_all_it_means(
    client: Client,
    keys: Keys,
    catalog: CatalogStore,
    settings: Settings,
    body: dict[str, object],
    status: int,
    code: str,
    pointer: str,
) -> None:
    """Nothing of a JSON:API document is dropped unread: a client would take
    it for applied."""
    (record,) = await add(catalog, settings, 1)
    response = await client.patch(
        f"/v1/images/{record.id}", json=body, headers=bearer(keys.mine)
    )
    await assert_error(response, status, code, pointer=pointer)
    assert await catalog.image(record.id) == record


async def test_a_patch_document_may_name_its_type_and_id(
    client: Client, keys: Keys, catalog: CatalogStore, settings: Settings
) -> None:
    (record,) = await add(catalog, settings, 1)
    body = {
        "data": {
            "type": "images",
            "id": record.id.upper(),
            "attributes": {"description": "named"},
        }
    }
    response = await client.patch(
        f"/v1/images/{record.id}",
        json=body,
        headers={**bearer(keys.mine), "Content-Type": "application/vnd.api+json"},
    )
    assert response.status == 200, await response.text()
    changed = await catalog.image(record.id)
    assert changed is not None
    assert changed.description == "named"


async def test_an_image_document_carries_the_etag_of_its_state(
    client: Client, keys: Keys, catalog: CatalogStore, settings: Settings
) -> None:
    (record,) = await add(catalog, settings, 1)
    url = f"/v1/images/{record.id}"
    first = await client.get(url, headers=bearer(keys.mine))
    again = await client.get(url, headers=bearer(keys.mine))
    etag = first.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert again.headers["ETag"] == etag  # its links are signed afresh; it is not
    patched = await client.patch(
        url, json={"description": "new"}, headers=bearer(keys.mine)
    )
    assert patched.status == 200
    assert patched.headers["ETag"] not in (etag, None)
    assert (await client.get(url, headers=bearer(keys.mine))).headers[
        "ETag"
    ] == patched.headers["ETag"]


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
@pytest.mark.parametrize(
    ("if_match", "applied"),
    [
        pytest.param("{current}", True, id="current"),
        pytest.param('"stale", {current}', True, id="listed"),
        pytest.param("*", True, id="any"),
        pytest.param('"0123456789abcdef0123456789abcdef"', False, id="stale"),
        pytest.param("W/{current}", False, id="weak-never-matches"),
    ],
)
async def test_if_match_writes_only_over_the_state_it_names(
    client: Client,
    keys: Keys,
    catalog: CatalogStore,
    settings: Settings,
    method: str,
    if_match: str,
    applied: bool,
) -> None:
    """A client that read the image writes over what it read, or is told
    another write came first (412), and nothing is written."""
    (record,) = await add(catalog, settings, 1)
    url = f"/v1/images/{record.id}"
    current = (await client.get(url, headers=bearer(keys.mine))).headers["ETag"]
    headers = {**bearer(keys.mine), "If-Match": if_match.format(current=current)}
    response = await client.request(
        method, url, json={"description": "mine"}, headers=headers
    )
    if applied:
        assert response.status == (200 if method == "PATCH" else 204)
    else:
        error = await assert_error(response, 412, "precondition_failed")
        assert error["source"] == {"header": "If-Match"}
        assert await catalog.image(record.id) == record


async def test_a_write_decided_on_an_older_state_changes_nothing(
    catalog: CatalogStore, settings: Settings
) -> None:
    """The store checks the state in the write's own transaction: a write
    that came between the read and this one makes it fail whole."""
    (record,) = await add(catalog, settings, 1)
    newer = await catalog.update_image(record.id, {"description": "first"})
    with pytest.raises(ImageChangedError):
        await catalog.update_image(
            record.id, {"description": "second"}, unchanged_since=record.updated_at
        )
    with pytest.raises(ImageChangedError):
        await catalog.remove_image(record.id, unchanged_since=record.updated_at)
    assert await catalog.image(record.id) == newer
    done = await catalog.update_image(
        record.id, {"description": "second"}, unchanged_since=newer.updated_at
    )
    assert done.description == "second"
    assert await catalog.remove_image(record.id, unchanged_since=done.updated_at)
    assert await catalog.image(record.id) is None


async def test_an_ingest_handed_back_is_a_change_a_write_must_have_seen(
    catalog: CatalogStore,
) -> None:
    """A shutdown hands a running ingest back with a note (`ingest.error`,
    shown and in the ETag): a write decided on the state before it fails."""
    record = await catalog.add_image(
        issuer_id=SEED_ISSUER, origin="https://origin.example/a.jpg"
    )
    assert await catalog.claim_ingest(
        record.id, owner="w", until="2999-01-01T00:00:00.000000+00:00"
    )
    await catalog.release_ingest(record.id, owner="w", note="interrupted")
    released = await catalog.image(record.id)
    assert released is not None
    assert released.ingest.error == "interrupted"
    with pytest.raises(ImageChangedError):
        await catalog.update_image(
            record.id, {"description": "x"}, unchanged_since=record.updated_at
        )
    await catalog.update_image(
        record.id, {"description": "x"}, unchanged_since=released.updated_at
    )


async def test_patch_needs_json(
    client: Client, keys: Keys, catalog: CatalogStore, settings: Settings
) -> None:
    (record,) = await add(catalog, settings, 1)
    response = await client.patch(
        f"/v1/images/{record.id}",
        data=b"{nope",
        headers={**bearer(keys.mine), "Content-Type": "application/json"},
    )
    await assert_error(response, 400, "bad_request")


async def test_a_revoked_signing_key_is_not_kept_by_minting(
    client: Client, keys: Keys, catalog: CatalogStore, settings: Settings
) -> None:
    """A page's links are signed with the issuer's newest key, whose secret
    minting remembers; revoked elsewhere (the CLI), it is forgotten as soon as
    the gateway sees the change, not when 256 other secrets push it out."""
    (record,) = await add(catalog, settings, 1)
    doc = await get_json(client, f"/v1/images/{record.id}", keys.mine)
    assert "token=" in doc["data"]["links"]["delivery"]
    assert minting_remembers(SEED_KEY.secret)
    await catalog.add_key(SEED_ISSUER, kid="next", secret="n" * 40)
    await catalog.revoke_key(SEED_ISSUER, SEED_KEY.kid)
    response = await client.get("/v1/images", headers=bearer(keys.mine))
    assert response.status == 200
    assert not minting_remembers(SEED_KEY.secret)
    assert minting_remembers("n" * 40)


# Delete


async def test_delete_removes_image_file_and_delivery_at_once(
    client: Client, keys: Keys, catalog: CatalogStore, settings: Settings
) -> None:
    (record,) = await add(catalog, settings, 1)
    token = mint(SEED_KEY, issuer_id=SEED_ISSUER, transformations=[{"width": 4}])
    delivery = f"/images/{record.id}?token={token}"
    assert (await client.get(delivery)).status == 200
    response = await client.delete(f"/v1/images/{record.id}", headers=bearer(keys.mine))
    assert response.status == 204
    await assert_error(await client.get(delivery), 404, "image_not_found")
    assert record.original is not None
    assert all(record.original.sha256 not in str(p) for p in stored_files(settings))


async def test_a_delete_whose_file_cannot_be_removed_is_still_204(
    client: Client,
    keys: Keys,
    catalog: CatalogStore,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The image is gone for everyone once its row is: a 503 (as it was)
    would have the client retry into a 404. The file waits for the sweep."""
    (record,) = await add(catalog, settings, 1)

    async def unavailable(sha256: str) -> None:
        raise OriginalsUnavailableError("the store does not answer")

    monkeypatch.setattr(client.app[STORE], "remove", unavailable)
    response = await client.delete(f"/v1/images/{record.id}", headers=bearer(keys.mine))
    assert response.status == 204
    await assert_error(
        await client.get(f"/v1/images/{record.id}", headers=bearer(keys.mine)),
        404,
        "image_not_found",
    )


async def test_delete_can_preserve_the_original(
    client: Client, keys: Keys, catalog: CatalogStore, settings: Settings
) -> None:
    (record,) = await add(catalog, settings, 1)
    response = await client.delete(
        f"/v1/images/{record.id}?preserveOnDisk=true", headers=bearer(keys.mine)
    )
    assert response.status == 204
    assert record.original is not None
    assert any(record.original.sha256 in str(p) for p in stored_files(settings))
    bad = await client.delete(
        f"/v1/images/{record.id}?preserveOnDisk=maybe", headers=bearer(keys.mine)
    )
    await assert_error(bad, 400, "parameter_invalid", parameter="preserveOnDisk")


# Origin ingest


@pytest.fixture
async def origin(aiohttp_server: AiohttpServer) -> TestServer:
    async def photo(request: web.Request) -> web.Response:
        return web.Response(body=JPEG, content_type="image/jpeg")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"\0" * 5000, content_type="image/jpeg")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(body=JPEG)

    async def text(request: web.Request) -> web.Response:
        return web.Response(text="<html>not an image</html>")

    async def bomb(request: web.Request) -> web.Response:
        return web.Response(body=pixel_bomb(20000, 20000), content_type="image/png")

    async def elsewhere(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://localhost:{request.url.port}/photo.jpg")

    async def nearby(request: web.Request) -> web.Response:
        raise web.HTTPFound("/photo.jpg")

    async def hops(request: web.Request) -> web.Response:
        # Each hop well within the ingest timeout, all of them together not.
        await asyncio.sleep(0.4)
        left = int(request.match_info["left"])
        raise web.HTTPFound(f"/hops/{left - 1}" if left > 1 else "/photo.jpg")

    async def redirect(request: web.Request) -> web.Response:
        # Not web.HTTPFound: it parses the Location, and these are unparsable.
        return web.Response(status=302, headers={"Location": request.query["to"]})

    app = web.Application()
    app.router.add_get("/photo.jpg", photo)
    app.router.add_get("/big", big)
    app.router.add_get("/slow", slow)
    app.router.add_get("/page", text)
    app.router.add_get("/bomb.png", bomb)
    app.router.add_get("/elsewhere", elsewhere)
    app.router.add_get("/nearby", nearby)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/hops/{left}", hops)
    return await aiohttp_server(app, host="127.0.0.1")


@pytest.fixture
def ingest_settings(settings: Settings) -> Settings:
    return replace(
        settings,
        ingest=replace(
            settings.ingest,
            allow_private=True,  # the test origin is on loopback
            allowed_hosts=frozenset({"127.0.0.1"}),
            timeout=1.0,
            max_upload_bytes=4000,
        ),
    )


async def ingest(client: Client, key: str, url: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/images", json={"origin": url}, headers=bearer(key)
    )
    assert response.status == 202, await response.text()
    data = await document(response)
    assert data["attributes"]["ingest"]["state"] == "queued"
    await client.app[INGESTOR].drain()
    image: dict[str, Any] = (await get_json(client, f"/v1/images/{data['id']}", key))[
        "data"
    ]
    return image


async def test_origin_ingest_finishes(
    aiohttp_client: AiohttpClient,
    ingest_settings: Settings,
    catalog: CatalogStore,
    keys: Keys,
    origin: TestServer,
) -> None:
    client = await aiohttp_client(create_app(ingest_settings))
    for path in ("/photo.jpg", "/nearby"):
        data = await ingest(client, keys.mine, str(origin.make_url(path)))
        attributes = attrs(data)
        assert attributes["ingest"]["state"] == "finished"
        assert (attributes["width"], attributes["height"]) == (64, 48)
        assert attributes["mediaType"] == "image/jpeg"


@pytest.mark.parametrize(
    ("path", "error"),
    [
        pytest.param("/elsewhere", "allow-list", id="redirect-off-the-allow-list"),
        pytest.param("/big", "at most 4000", id="too-large"),
        pytest.param("/slow", "longer than", id="too-slow"),
        pytest.param("/hops/5", "longer than 1 s", id="too-slow-over-redirects"),
        pytest.param("/page", "not a JPEG", id="not-an-image"),
        pytest.param(
            "/bomb.png", "pixels; at most 50000000 are accepted", id="pixel-bomb"
        ),
        pytest.param("/missing", "answered 404", id="missing"),
    ],
)
async def test_origin_ingest_errors_are_recorded(
    aiohttp_client: AiohttpClient,
    ingest_settings: Settings,
    catalog: CatalogStore,
    keys: Keys,
    origin: TestServer,
    path: str,
    error: str,
) -> None:
    client = await aiohttp_client(create_app(ingest_settings))
    data = await ingest(client, keys.mine, str(origin.make_url(path)))
    state = data["attributes"]["ingest"]
    assert state["state"] == "error"
    assert error in state["error"]


async def test_host_resolving_to_loopback_is_refused_after_dns(
    client: Client, keys: Keys, origin: TestServer
) -> None:
    data = await ingest(client, keys.mine, f"http://localhost:{origin.port}/photo.jpg")
    state = data["attributes"]["ingest"]
    assert state["state"] == "error"
    assert "non-public" in state["error"]


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("ftp://example.com/a.jpg", id="scheme"),
        pytest.param("http://127.0.0.1/a.jpg", id="loopback-literal"),
        pytest.param("http://10.0.0.8/a.jpg", id="private-literal"),
        pytest.param(
            "http://169.254.169.254/latest/meta-data", id="link-local-metadata"
        ),
        pytest.param("http://[::1]/a.jpg", id="ipv6-loopback"),
        pytest.param("http://[::ffff:127.0.0.1]/a.jpg", id="mapped-loopback"),
        pytest.param("http://user:pw@example.com/a.jpg", id="credentials"),
        pytest.param("/relative.jpg", id="relative"),
        pytest.param("http://" + "a" * 300 + ".com/a.jpg", id="label-too-long"),
        pytest.param("http://a..b/a.jpg", id="empty-label"),
        # Stored and shown with the image: bounded (it was stored whole).
        pytest.param("https://example.com/" + "a" * 8192, id="url-too-long"),
        # A URL holds no control character (PostgreSQL's text no NUL: a 500).
        pytest.param("https://example.com/a\u0000.jpg", id="nul"),
        pytest.param("https://example.com/a\u0007.jpg", id="control-character"),
    ],
)
async def test_unsafe_origins_are_422_before_any_fetch(
    client: Client, keys: Keys, catalog: CatalogStore, url: str
) -> None:
    response = await client.post(
        "/v1/images", json={"origin": url}, headers=bearer(keys.mine)
    )
    await assert_error(response, 422, "origin_not_allowed", pointer="/origin")
    assert await catalog.images(SEED_ISSUER) == []


@pytest.mark.parametrize(
    "location",
    [
        pytest.param("http://xn--a/", id="malformed-punycode"),
        pytest.param("http://[", id="open-bracket"),
        pytest.param("http://a:99999/", id="port-out-of-range"),
    ],
)
async def test_a_redirect_to_an_invalid_url_is_recorded_without_a_traceback(
    aiohttp_client: AiohttpClient,
    ingest_settings: Settings,
    catalog: CatalogStore,
    keys: Keys,
    origin: TestServer,
    caplog: pytest.LogCaptureFixture,
    location: str,
) -> None:
    """It was a ValueError: "an unexpected error occurred", and an ERROR log."""
    client = await aiohttp_client(create_app(ingest_settings))
    url = origin.make_url("/redirect").with_query(to=location)
    data = await ingest(client, keys.mine, str(url))
    state = data["attributes"]["ingest"]
    assert state["state"] == "error"
    assert "redirect" in state["error"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://xn--a.com/x.jpg", id="punycode-of-no-character"),
        pytest.param("http://xn--/", id="empty-punycode"),
    ],
)
async def test_a_malformed_internationalised_host_is_422_saying_so(
    client: Client, keys: Keys, catalog: CatalogStore, url: str
) -> None:
    """It was a 500: yarl raised UnicodeError when the host was read."""
    response = await client.post(
        "/v1/images", json={"origin": url}, headers=bearer(keys.mine)
    )
    error = await assert_error(response, 422, "origin_not_allowed", pointer="/origin")
    assert "internationalised (xn--) name" in str(error["detail"])
    assert await catalog.images(SEED_ISSUER) == []


async def test_origin_off_the_allow_list_is_422(
    aiohttp_client: AiohttpClient,
    ingest_settings: Settings,
    catalog: CatalogStore,
    keys: Keys,
) -> None:
    client = await aiohttp_client(create_app(ingest_settings))
    response = await client.post(
        "/v1/images",
        json={"origin": "https://example.com/a.jpg"},
        headers=bearer(keys.mine),
    )
    await assert_error(response, 422, "origin_not_allowed", pointer="/origin")


async def test_origin_body_must_have_only_origin(client: Client, keys: Keys) -> None:
    response = await client.post(
        "/v1/images", json={"origin": 5, "extra": 1}, headers=bearer(keys.mine)
    )
    assert response.status == 422
    errors = (await response.json(content_type=None))["errors"]
    assert {e["source"]["pointer"] for e in errors} == {"/origin", "/extra"}


# Cloudinary (mocked: no network)

UPLOAD_URL = re.compile(r"^https://api\.cloudinary\.com/v1_1/democloud/image/upload$")
DESTROY_URL = re.compile(r"^https://api\.cloudinary\.com/v1_1/democloud/image/destroy$")
ACCOUNT = CloudinaryAccount(cloud_name="democloud", api_key="k1", api_secret="s3cret")


@pytest.fixture
def cloud() -> Iterator[aioresponses]:
    with aioresponses(passthrough=["http://127.0.0.1", "http://localhost"]) as mocked:
        yield mocked


@pytest.fixture
async def cloud_client(
    aiohttp_client: AiohttpClient, settings: Settings, catalog: CatalogStore
) -> Client:
    return await aiohttp_client(
        create_app(
            replace(settings, upstream=replace(settings.upstream, cloudinary=ACCOUNT))
        )
    )


async def test_upload_also_goes_to_cloudinary(
    cloud_client: Client, cloud: aioresponses, keys: Keys
) -> None:
    cloud.post(
        UPLOAD_URL,
        response_class=MockedResponse,
        payload={
            "public_id": "abc",
            "version": 171,
            "format": "jpg",
            "type": "authenticated",
            "width": 640,
            "height": 480,
        },
    )
    response = await cloud_client.post(
        "/v1/images", data=form(image_file(JPEG)), headers=bearer(keys.mine)
    )
    assert response.status == 201, await response.text()
    attributes = attrs(await document(response))
    assert attributes["cloudinary"] == {
        "publicId": "abc",
        "version": 171,
        "format": "jpg",
        "deliveryType": "authenticated",
    }
    assert (attributes["width"], attributes["height"]) == (640, 480)  # its answer


@pytest.mark.parametrize(
    ("mock", "status", "code"),
    [
        pytest.param(
            {"status": 500, "payload": {"error": {"message": "boom"}}},
            502,
            "upstream_error",
            id="500",
        ),
        pytest.param(
            {"status": 200, "payload": {"unexpected": True}},
            502,
            "upstream_error",
            id="nonsense",
        ),
        pytest.param(
            {"exception": TimeoutError()}, 504, "upstream_timeout", id="timeout"
        ),
    ],
)
async def test_cloudinary_failure_registers_nothing(
    cloud_client: Client,
    cloud: aioresponses,
    keys: Keys,
    catalog: CatalogStore,
    settings: Settings,
    mock: dict[str, Any],
    status: int,
    code: str,
) -> None:
    cloud.post(UPLOAD_URL, response_class=MockedResponse, **mock)
    response = await cloud_client.post(
        "/v1/images", data=form(image_file(JPEG)), headers=bearer(keys.mine)
    )
    await assert_error(response, status, code)
    assert await catalog.images(SEED_ISSUER) == []
    assert JPEG not in [p.read_bytes() for p in stored_files(settings)]


async def _uploaded_to_cloudinary(
    cloud_client: Client, cloud: aioresponses, keys: Keys
) -> dict[str, object]:
    """An upload Cloudinary stores as public id `abc`: its document."""
    cloud.post(
        UPLOAD_URL,
        response_class=MockedResponse,
        payload={
            "public_id": "abc",
            "version": 1,
            "format": "jpg",
            "width": 64,
            "height": 48,
        },
    )
    return await document(
        await cloud_client.post(
            "/v1/images", data=form(image_file(JPEG)), headers=bearer(keys.mine)
        )
    )


async def test_delete_destroys_the_cloudinary_asset_first(
    cloud_client: Client, cloud: aioresponses, keys: Keys, catalog: CatalogStore
) -> None:
    created = await _uploaded_to_cloudinary(cloud_client, cloud, keys)
    cloud.post(
        DESTROY_URL,
        response_class=MockedResponse,
        status=500,
        payload={"error": {"message": "down"}},
    )
    failed = await cloud_client.delete(
        f"/v1/images/{created['id']}", headers=bearer(keys.mine)
    )
    await assert_error(failed, 502, "upstream_error")
    assert await catalog.image(str(created["id"])) is not None
    cloud.post(DESTROY_URL, response_class=MockedResponse, payload={"result": "ok"})
    assert (
        await cloud_client.delete(
            f"/v1/images/{created['id']}", headers=bearer(keys.mine)
        )
    ).status == 204
    assert await catalog.image(str(created["id"])) is None


@pytest.mark.parametrize("destroyed", [True, False])
async def test_a_conditional_delete_is_decided_in_the_catalog_before_cloudinary(
    cloud_client: Client,
    cloud: aioresponses,
    keys: Keys,
    catalog: CatalogStore,
    caplog: pytest.LogCaptureFixture,
    destroyed: bool,
) -> None:
    """A write may come while Cloudinary is called: if the catalog's check
    came after, a 412 ("nothing was written") would have destroyed the asset.
    The catalog decides first; an asset Cloudinary then fails to destroy stays,
    unused, and is logged."""
    created = await _uploaded_to_cloudinary(cloud_client, cloud, keys)
    image_id = str(created["id"])
    url = f"/v1/images/{image_id}"
    etag = (await cloud_client.get(url, headers=bearer(keys.mine))).headers["ETag"]
    seen: list[ImageRecord | None] = []

    async def destroy(_: URL, **__: object) -> CallbackResult:
        seen.append(await catalog.image(image_id))  # the catalog decided already
        if destroyed:
            return CallbackResult(
                payload={"result": "ok"}, response_class=MockedResponse
            )
        return CallbackResult(
            status=500,
            payload={"error": {"message": "down"}},
            response_class=MockedResponse,
        )

    cloud.post(DESTROY_URL, callback=destroy, response_class=MockedResponse)
    with caplog.at_level(logging.WARNING, logger="gateway"):
        response = await cloud_client.delete(
            url, headers={**bearer(keys.mine), "If-Match": etag}
        )
    assert response.status == 204
    assert seen == [None]
    assert await catalog.image(image_id) is None
    assert any(
        "Cloudinary asset abc stays" in r.getMessage() for r in caplog.records
    ) is (not destroyed)


def test_upload_parameters_are_signed_as_cloudinary_documents() -> None:
    """Cloudinary: sha1 of the sorted `key=value&…` parameters followed by the secret."""
    params = signed_params(
        {"timestamp": "1315060510", "public_id": "sample", "type": "authenticated"},
        ACCOUNT,
    )
    to_sign = b"public_id=sample&timestamp=1315060510&type=authenticateds3cret"
    expected = hashlib.sha1(to_sign).hexdigest()  # noqa: S324 - Cloudinary's scheme
    assert params["signature"] == expected
    assert params["api_key"] == "k1"


async def test_an_origin_cloudinary_refuses_leaves_no_stored_original(
    aiohttp_client: AiohttpClient,
    ingest_settings: Settings,
    settings: Settings,
    catalog: CatalogStore,
    keys: Keys,
    origin: TestServer,
    cloud: aioresponses,
) -> None:
    cloud.post(
        UPLOAD_URL,
        response_class=MockedResponse,
        status=500,
        payload={"error": {"message": "boom"}},
    )
    upstream = replace(ingest_settings.upstream, cloudinary=ACCOUNT)
    client = await aiohttp_client(
        create_app(replace(ingest_settings, upstream=upstream))
    )
    data = await ingest(client, keys.mine, str(origin.make_url("/photo.jpg")))
    assert attrs(data)["ingest"]["state"] == "error"
    assert "boom" in attrs(data)["ingest"]["error"]
    assert JPEG not in [p.read_bytes() for p in stored_files(settings)]


@pytest.mark.parametrize(
    "public_url",
    ["https://img.example.com", "https://img.example.com/gw/", "http://h:8080/a/b"],
)
async def test_every_link_is_under_the_public_url(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: CatalogStore,
    keys: Keys,
    public_url: str,
) -> None:
    """Written as text (yarl's joins were a third of a page's cost), the same
    as yarl joins them."""
    (record,) = await add(catalog, settings, 1)
    await catalog.update_image(record.id, {"is_public": True})
    served = replace(settings, server=replace(settings.server, public_url=public_url))
    client = await aiohttp_client(create_app(served))
    links = (await get_json(client, f"/v1/images/{record.id}", keys.mine))["data"][
        "links"
    ]
    base = URL(public_url)
    assert links["self"] == str(base / "v1" / "images" / record.id)
    assert links["public"] == str(base / "image" / f"{record.id}.jpg")
    assert links["iiif"] == str(base / "iiif" / "3" / record.id / "info.json")
    for name in ("delivery", "thumbnail"):
        link = URL(links[name])
        assert link.with_query(None) == base / "images" / record.id, name
        assert list(link.query) == ["token"]
    # A page's links too: a client follows `next` as given.
    await add(catalog, settings, 1)
    page = await get_json(client, "/v1/images?page[size]=1", keys.mine)
    for name in ("self", "next"):
        link = URL(page["links"][name])
        assert link.with_query(None) == base / "v1" / "images", name
    # Behind the proxy that strips the public URL's path:
    following = page["links"]["next"].removeprefix(str(base).rstrip("/"))
    second = await get_json(client, following, keys.mine)
    assert second["links"]["prev"].startswith(str(base / "v1" / "images") + "?")
