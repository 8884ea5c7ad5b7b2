"""Helpers for the /v1 catalog API tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import ClientResponse

from gateway import Settings


@dataclass(frozen=True, slots=True)
class Keys:
    mine: str  # SEED_ISSUER's API key
    other: str  # OTHER_ISSUER's


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
