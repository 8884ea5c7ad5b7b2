"""Helpers for the /v1 catalog API tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import ClientResponse
from yarl import URL

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


async def document(response: ClientResponse) -> dict[str, Any]:
    doc = await response.json(content_type=None)
    assert isinstance(doc, dict)
    data = doc["data"]
    assert isinstance(data, dict)
    return data


def stored_files(settings: Settings) -> list[Path]:
    root = settings.originals
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.parent.name != "incoming"
    )


class _SentRequest:
    """What aiohttp 3.14 reads of a finished request's writer: its size."""

    output_size = 0


class MockedResponse(aiohttp.ClientResponse):
    """A response aioresponses can build under aiohttp 3.14.

    aiohttp 3.14 (a security release) added a required `stream_writer`, which
    aioresponses 0.7.9, its latest, does not pass: pnuckowski/aioresponses#289.
    Pass `response_class=MockedResponse` to each mock until a release fixes it.
    """

    def __init__(self, method: str, url: URL, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", _SentRequest())
        super().__init__(method, url, **kwargs)
