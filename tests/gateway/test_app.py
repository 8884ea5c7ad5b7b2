"""The app factory builds; it leaves the process alone (that is `serve`'s to do)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
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


def test_pillows_codecs_are_loaded_at_start_not_in_a_first_render(
    tmp_path: Path,
) -> None:
    """Loading them holds the GIL: inside a first render, on a render thread,
    it stalled the event loop 175 ms. A fresh interpreter: Pillow's registry is
    the process's own, and other tests have filled this one's."""
    program = f"""
import asyncio
import json
from pathlib import Path
from aiohttp import web
from PIL import Image
from gateway import create_app
from tests.conftest import render_settings

async def start() -> None:
    runner = web.AppRunner(create_app(render_settings(Path({str(tmp_path)!r}))))
    before = sorted(Image.SAVE)
    await runner.setup()
    print(json.dumps([before, sorted(Image.SAVE)]))
    await runner.cleanup()

asyncio.run(start())
"""
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    before, after = json.loads(done.stdout)
    assert before == []
    assert {"AVIF", "JPEG", "PNG", "WEBP"} <= set(after)
