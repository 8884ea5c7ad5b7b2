"""`image-gateway migrate --catalog-to`: a SQLite catalog copied into PostgreSQL,
idempotent, resumable and verified, through the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from gateway.catalog import (
    CatalogStore,
    Original,
    PostgresCatalog,
    SortKey,
    SqliteCatalog,
)
from signing import IssuerPolicy
from transforms.cloudinary import CloudinaryAsset

A = "a0000000-0000-4000-8000-000000000001"
B = "b0000000-0000-4000-8000-000000000002"


def migrate(data_dir: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "migrate", "--catalog-to", url],
        capture_output=True,
        text=True,
        env={**os.environ, "GATEWAY_DATA_DIR": str(data_dir)},
        timeout=120,
        check=False,
    )


def written(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)["catalog"]
    assert doc["verified"] is True
    return {t["table"]: t["written"] for t in doc["tables"]}


@pytest.fixture
async def source(tmp_path: Path) -> dict[str, str]:
    """A SQLite catalog with one of everything: its API keys by name."""
    store = await SqliteCatalog.open(tmp_path / "catalog.sqlite3")
    try:
        await store.add_issuer(issuer_id=A, name="a", kid="a-1", secret="a" * 40)
        await store.add_key(A, kid="a-2", secret="c" * 40)
        await store.add_key(A, kid="a-old", secret="d" * 40)
        await store.revoke_key(A, "a-old")
        await store.add_issuer(
            issuer_id=B,
            name="b",
            kid="b-1",
            algorithm="HS512",
            policy=IssuerPolicy(require_exp=True, max_lifetime=600),
        )
        keys = {"a": await store.add_api_key(A), "b": await store.add_api_key(B)}
        keys["revoked"] = await store.add_api_key(A)
        await store.revoke_api_key(A, keys["revoked"])
        for i in range(7):
            record = await store.add_image(
                issuer_id=A,
                original=Original(
                    sha256=f"{i:064x}",
                    media_type="image/png",
                    file_size=100 * (i % 3),
                    width=4,
                    height=3,
                ),
                original_filename=f"photo-{i}.png",
            )
            await store.update_image(
                record.id,
                {"tags": ["beach", f"t{i}"], "is_public": i % 2 == 0, "number1": i / 3},
            )
        await store.add_image(
            issuer_id=B,
            cloudinary=CloudinaryAsset(public_id="shop/shoe", version=7, format="png"),
        )
        await store.add_image(issuer_id=B, origin="https://example.org/a.jpg")
    finally:
        await store.close()
    return keys


async def _both(tmp_path: Path, url: str) -> tuple[CatalogStore, CatalogStore]:
    return (
        await SqliteCatalog.open(tmp_path / "catalog.sqlite3"),
        await PostgresCatalog.open(url),
    )


async def test_the_copy_answers_exactly_as_the_original(
    tmp_path: Path, postgres_url: str, source: dict[str, str]
) -> None:
    assert written(migrate(tmp_path, postgres_url)) == {
        "issuers": 2,
        "issuer_keys": 4,
        "api_keys": 3,
        "images": 9,
    }
    lite, pg = await _both(tmp_path, postgres_url)
    try:
        assert await pg.issuers() == await lite.issuers()  # keys, order, policies
        for name, key in source.items():
            assert await pg.api_key(key) == await lite.api_key(key), name
        assert await pg.api_key(source["revoked"]) is None
        for issuer in (A, B):
            assert await pg.images(issuer) == await lite.images(issuer)
        for sort in SortKey:
            assert await pg.page(A, sort=sort, size=4) == await lite.page(
                A, sort=sort, size=4
            )
        assert await pg.page(A, tag="t3") == await lite.page(A, tag="t3")
        # New keys follow the copied ones in order.
        await pg.add_key(A, kid="a-3")
        after = await pg.issuer(A)
        assert after is not None
        assert [k.kid for k in after.keys] == ["a-3", "a-2", "a-1"]
    finally:
        await lite.close()
        await pg.close()


async def test_running_it_again_writes_only_what_changed(
    tmp_path: Path, postgres_url: str, source: dict[str, str]
) -> None:
    written(migrate(tmp_path, postgres_url))
    assert set(written(migrate(tmp_path, postgres_url)).values()) == {0}
    lite = await SqliteCatalog.open(tmp_path / "catalog.sqlite3")
    try:
        await lite.revoke_key(A, "a-2")
    finally:
        await lite.close()
    assert written(migrate(tmp_path, postgres_url))["issuer_keys"] == 1
    pg = await PostgresCatalog.open(postgres_url)
    try:
        issuer = await pg.issuer(A)
        assert issuer is not None
        assert [k.kid for k in issuer.keys] == ["a-1"]
    finally:
        await pg.close()


async def test_an_interrupted_copy_is_finished_by_running_it_again(
    tmp_path: Path, postgres_url: str, source: dict[str, str]
) -> None:
    written(migrate(tmp_path, postgres_url))
    conn = await asyncpg.connect(postgres_url)
    try:  # as if the first run had stopped before its last batches
        await conn.execute("DELETE FROM images WHERE issuer_id = $1", A)
        await conn.execute("DELETE FROM api_keys")
    finally:
        await conn.close()
    again = written(migrate(tmp_path, postgres_url))
    assert again == {"issuers": 0, "issuer_keys": 0, "api_keys": 3, "images": 7}


async def test_a_target_with_rows_of_its_own_fails_the_verification(
    tmp_path: Path, postgres_url: str, source: dict[str, str]
) -> None:
    pg = await PostgresCatalog.open(postgres_url)
    try:
        await pg.add_issuer(name="someone else's")
    finally:
        await pg.close()
    result = migrate(tmp_path, postgres_url)
    assert result.returncode == 2
    assert result.stderr.startswith("image-gateway: issuers: 2 rows in the source, 3")
    assert result.stderr.count("\n") == 1
