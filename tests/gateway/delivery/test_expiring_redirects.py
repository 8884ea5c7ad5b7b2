"""GATEWAY_CDN_TOKEN_KEY: redirects carry Cloudinary's `__cld_token__`, expiring with the token.

Each Location is compared with what the SDK itself writes for the same asset,
chain, key and expiry.
"""

from __future__ import annotations

import dataclasses
import time
import types

import cloudinary
import cloudinary.utils
import jwt
import pytest
from pytest_aiohttp import AiohttpClient

from gateway import Settings, create_app
from gateway.catalog import SqliteCatalog
from gateway.keys import RESOLVER
from tests.conftest import API_SECRET, SEED_CLOUD, Mint
from tests.gateway.delivery.test_redirects import SEED_PATH, path

KEY = "0f" * 32
SEED_CHAIN = SEED_PATH.removesuffix("/v123123/f7332109c6c5.jpg")


def sdk_location(expiration: int) -> str:
    """The SDK's own URL for the seed's tiling with a token good until `expiration`."""
    url, _ = cloudinary.utils.cloudinary_url(
        "f7332109c6c5",
        format="jpg",
        version=123123,
        type="authenticated",
        transformation=[{"raw_transformation": SEED_CHAIN}],
        sign_url=True,
        secure=True,
        cloud_name=SEED_CLOUD,
        api_secret=API_SECRET,
        auth_token={"key": KEY, "expiration": expiration},
    )
    assert isinstance(url, str)
    return url


def with_key(settings: Settings, max_age: int = 3600) -> Settings:
    upstream = settings.upstream
    return dataclasses.replace(
        settings,
        upstream=dataclasses.replace(
            upstream, cdn_token_key=KEY, cdn_url_max_age=max_age
        ),
    )


async def location(
    aiohttp_client: AiohttpClient, settings: Settings, token: str
) -> str:
    client = await aiohttp_client(create_app(settings))
    response = await client.get(path(token), allow_redirects=False)
    assert response.status == 302, await response.text()
    return response.headers["Location"]


async def test_the_url_expires_with_the_token_rounded_down_to_the_minute(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
) -> None:
    issued = int(time.time())
    exp = (issued // 60 + 10) * 60 + 59  # the last second of a minute
    token = mint_token(now=issued, ttl=exp - issued)
    assert jwt.decode(token, options={"verify_signature": False})["exp"] == exp
    found = await location(aiohttp_client, with_key(settings), token)
    assert found == sdk_location(exp - 59)
    assert "/s--" not in found  # the SDK leaves the signature out
    assert found.split("?")[1].startswith(f"__cld_token__=exp={exp - 59}~hmac=")


async def test_without_exp_the_url_lasts_the_configured_max_age(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
) -> None:
    before = time.time()
    found = await location(
        aiohttp_client, with_key(settings, max_age=600), mint_token()
    )
    after = time.time()
    candidates = {int(t + 600) // 60 * 60 for t in (before, after)}
    assert found in {sdk_location(e) for e in candidates}


async def test_a_remembered_url_without_exp_is_signed_again_before_it_expires(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The remembered 302 of a token without `exp` is not kept for as long as
    the token is (five minutes between verifications): its URL lasts two, so
    it is kept (120 - 60) / 2 = 30 s, verified once in that time."""
    start = (time.time() // 300 + 1) * 300 + 10.0  # early in a five-minute window
    clock = [start]
    fake = types.SimpleNamespace(time=lambda: clock[0])
    monkeypatch.setattr("gateway.delivery.resolver.time", fake)
    app = create_app(with_key(settings, max_age=120))
    client = await aiohttp_client(app)
    token = mint_token()  # issued now: the clock above is the resolver's only
    answers, lookups = {}, {}
    for at in (0, 5, 10, 125):  # the first URL expires at +110
        clock[0] = start + at
        response = await client.get(path(token), allow_redirects=False)
        assert response.status == 302
        answers[at] = response.headers["Location"]
        lookups[at] = app[RESOLVER].cache_lookups()
    assert answers[0] == sdk_location((int(start) + 120) // 60 * 60)
    assert answers[5] == answers[10] == answers[0]
    assert answers[125] == sdk_location((int(start) + 125 + 120) // 60 * 60)
    # Verified for the first request (its two misses: before and after the
    # catalog's records were loaded) and again for the last only.
    hits, misses = (
        lookups[125][f"redirects:{n}"] - lookups[0][f"redirects:{n}"]
        for n in ("hit", "miss")
    )
    assert (hits, misses) == (2, 1)


async def test_two_tokens_in_one_minute_share_a_url(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
) -> None:
    """CDN cache keys do not fragment: exp values within a minute give one URL."""
    issued = int(time.time())
    minute = (issued // 60 + 30) * 60
    client = await aiohttp_client(create_app(with_key(settings)))
    found = set()
    for exp in (minute, minute + 1, minute + 59):
        token = mint_token(now=issued, ttl=exp - issued)
        response = await client.get(path(token), allow_redirects=False)
        found.add(response.headers["Location"])
    assert found == {sdk_location(minute)}


async def test_without_a_key_the_url_is_signed_and_has_no_token(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
) -> None:
    found = await location(aiohttp_client, settings, mint_token(ttl=60))
    assert "/s--" in found
    assert "?" not in found


async def test_the_sdks_global_token_config_is_never_used(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
) -> None:
    """The SDK merges its global `auth_token` under a call's: every field is ours."""
    token = mint_token(ttl=3600)
    expected = await location(aiohttp_client, with_key(settings), token)
    config = cloudinary.config()
    saved = dict(vars(config))
    try:
        cloudinary.config(
            auth_token={
                "key": "ab" * 32,
                "acl": "/*",
                "ip": "10.0.0.1",
                "start_time": 5,
                "duration": 60,
                "token_name": "other",
            }
        )
        assert await location(aiohttp_client, with_key(settings), token) == expected
    finally:
        vars(config).clear()
        vars(config).update(saved)
