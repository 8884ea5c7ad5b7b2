"""The app factory builds; it leaves the process alone (that is `serve`'s to do)."""

from __future__ import annotations

import gc
from dataclasses import replace
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from gateway import create_app
from tests.conftest import render_settings


async def test_the_app_neither_prints_nor_freezes_the_heap_on_start(
    aiohttp_client: AiohttpClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Embedders and tests start apps too: printing and `gc.freeze()` belong to `serve`."""
    settings = render_settings(tmp_path)
    demo = replace(settings, server=replace(settings.server, demo=True))
    client = await aiohttp_client(create_app(demo))
    assert (await client.get("/demo")).status == 200  # started, demo seeded
    assert capsys.readouterr().out == ""
    assert gc.get_freeze_count() == 0
