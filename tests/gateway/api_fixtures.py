"""Fixtures for the /v1 catalog API: two issuers with API keys, helpers to upload."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import ClientResponse

from gateway import Settings
from gateway.catalog import Catalog
from gateway.originals import add_original
from gateway.storage import OriginalStore
from tests.conftest import OTHER_IMAGE, OTHER_ISSUER, OTHER_KEY, SEED_ISSUER, SEED_KEY
from tests.images import GREEN, solid


@dataclass(frozen=True, slots=True)
class Keys:
    mine: str  # SEED_ISSUER's API key
    other: str  # OTHER_ISSUER's


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        delivery="render",
        catalog_poll_interval=0.0,
        access_log=False,
    )


@pytest.fixture
def catalog(settings: Settings) -> Iterator[Catalog]:
    catalog = Catalog(settings.database)
    catalog.add_issuer(issuer_id=SEED_ISSUER, secret=SEED_KEY.secret, kid=SEED_KEY.kid)
    catalog.add_issuer(
        issuer_id=OTHER_ISSUER, secret=OTHER_KEY.secret, kid=OTHER_KEY.kid
    )
    add_original(
        catalog,
        OriginalStore(settings.data_dir / "originals"),
        settings.limits,
        issuer_id=OTHER_ISSUER,
        image_id=OTHER_IMAGE,
        data=solid((40, 30), GREEN, "PNG"),
        filename="others-secret-holiday.png",
    )
    yield catalog
    catalog.close()


@pytest.fixture
def keys(catalog: Catalog) -> Keys:
    return Keys(catalog.add_api_key(SEED_ISSUER), catalog.add_api_key(OTHER_ISSUER))


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def form(
    *files: tuple[str, bytes, str, str], fields: dict[str, str] | None = None
) -> aiohttp.FormData:
    """(field, bytes, filename, declared content type) per file."""
    data = aiohttp.FormData(default_to_multipart=True)
    for name, value in (fields or {}).items():
        data.add_field(name, value)
    for field, content, filename, content_type in files:
        data.add_field(field, content, filename=filename, content_type=content_type)
    return data


def image_file(
    data: bytes, name: str = "photo.jpg", kind: str = "image/jpeg"
) -> tuple[str, bytes, str, str]:
    return ("image", data, name, kind)


async def document(response: ClientResponse) -> dict[str, object]:
    doc = await response.json(content_type=None)
    assert isinstance(doc, dict)
    data = doc["data"]
    assert isinstance(data, dict)
    return data


def stored_files(settings: Settings) -> list[Path]:
    root = settings.data_dir / "originals"
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.parent.name != "incoming"
    )
