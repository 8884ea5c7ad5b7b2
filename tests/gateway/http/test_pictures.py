"""`/v3/images/{id}/{size}` and `/image/{id}.{ext}` in render mode, and every credential form.

The proxy half of `/v3` (redirect mode) is in `test_pictures_proxy.py`.
"""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.pytest_plugin import AiohttpClient
from aiohttp.test_utils import TestClient
from PIL import Image
from yarl import URL

from gateway import Settings, create_app
from gateway.catalog import SqliteCatalog
from gateway.config import AccessSettings
from gateway.keys import CATALOG
from gateway.originals.ingest import add_original
from gateway.originals.local import LocalOriginalStore
from signing import AccessToken, IssuerKey, mint, mint_access_token
from tests.conftest import (
    OTHER_ISSUER,
    OTHER_KEY,
    SEED_ISSUER,
    SEED_KEY,
    render_settings,
)
from tests.helpers import assert_error
from tests.images import RED, solid

Client = TestClient[web.Request, web.Application]
PUBLIC = "11111111-1111-4111-8111-111111111111"  # 1600x1200, public, cap 400, roles
PRIVATE = "22222222-2222-4222-8222-222222222222"  # 1600x1200, private, no cap
THEIRS = "33333333-3333-4333-8333-333333333333"  # the other issuer's, public
WRITE = "images:read images:write"


@dataclass(frozen=True, slots=True)
class Credentials:
    key: str  # an API key without roles
    staff_key: str  # an API key with the role "staff"
    other_key: str  # the other issuer's


def access(
    *,
    issuer: str = SEED_ISSUER,
    key: IssuerKey = SEED_KEY,
    scope: str = "images:read",
    roles: tuple[str, ...] = (),
    ttl: int = 600,
) -> str:
    return mint_access_token(
        key,
        issuer_id=issuer,
        subject="user-7",
        ttl=ttl,
        scopes=scope.split(),
        roles=roles,
    )


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    base = render_settings(tmp_path)
    return Settings(
        data_dir=base.data_dir,
        server=base.server,
        catalog=base.catalog,
        upstream=base.upstream,
        access=AccessSettings(cors_origins=frozenset({"https://app.example"})),
    )


@pytest.fixture
async def catalog(settings: Settings) -> AsyncIterator[SqliteCatalog]:
    catalog = await SqliteCatalog.open(settings.database)
    await catalog.add_issuer(
        issuer_id=SEED_ISSUER, secret=SEED_KEY.secret, kid=SEED_KEY.kid
    )
    await catalog.add_issuer(
        issuer_id=OTHER_ISSUER, secret=OTHER_KEY.secret, kid=OTHER_KEY.kid
    )
    store = LocalOriginalStore(settings.originals)
    photo = solid((1600, 1200), RED, "JPEG")
    for issuer, image_id in (
        (SEED_ISSUER, PUBLIC),
        (SEED_ISSUER, PRIVATE),
        (OTHER_ISSUER, THEIRS),
    ):
        await add_original(
            catalog,
            store,
            settings.limits,
            issuer_id=issuer,
            image_id=image_id,
            data=photo,
        )
    await catalog.update_image(
        PUBLIC,
        {"is_public": True, "max_unauthorised": 400, "roles": frozenset({"staff"})},
    )
    await catalog.update_image(THEIRS, {"is_public": True})
    yield catalog
    await catalog.close()


@pytest.fixture
async def credentials(catalog: SqliteCatalog) -> Credentials:
    return Credentials(
        key=await catalog.add_api_key(SEED_ISSUER),
        staff_key=await catalog.add_api_key(SEED_ISSUER, roles=frozenset({"staff"})),
        other_key=await catalog.add_api_key(OTHER_ISSUER),
    )


@pytest.fixture
async def client(
    aiohttp_client: AiohttpClient, settings: Settings, catalog: SqliteCatalog
) -> Client:
    return await aiohttp_client(create_app(settings))


def size_of(body: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(body)) as picture:
        return picture.size


# Credentials: each form accepted, each refusal


async def test_each_credential_form_is_accepted(
    client: Client, credentials: Credentials
) -> None:
    token = access()
    for headers, cookies in (
        (bearer(credentials.key), {}),
        (bearer(token), {}),
        ({"X-Session-Token": token}, {}),
        ({}, {"gateway_session": token}),
    ):
        client.session.cookie_jar.clear()
        client.session.cookie_jar.update_cookies(cookies)
        response = await client.get(
            f"/v3/images/{PRIVATE}/100.100.jpg", headers=headers
        )
        assert response.status == 200, (headers, cookies, await response.text())
        assert response.content_type == "image/jpeg"


def _expired() -> str:
    return mint_access_token(
        SEED_KEY,
        issuer_id=SEED_ISSUER,
        subject="u",
        ttl=60,
        now=time.time() - 3600,
    )


def _forged() -> str:
    return access(key=IssuerKey(kid=SEED_KEY.kid, secret="f" * 40))


def _transformation_token() -> str:
    return mint(
        SEED_KEY, issuer_id=SEED_ISSUER, transformations=[], ttl=60, subject="u"
    )


def _wrong_typ() -> str:
    # An access token's claims under a plain JWT header.
    import jwt

    return jwt.encode(
        {
            "iss": SEED_ISSUER,
            "sub": "u",
            "exp": int(time.time()) + 60,
            "scope": "images:read",
        },
        SEED_KEY.secret,
        algorithm="HS256",
        headers={"kid": SEED_KEY.kid, "typ": "JWT"},
    )


@pytest.mark.parametrize(
    ("headers", "code", "challenge"),
    [
        ({}, "api_key_missing", "Bearer"),
        ({"Authorization": "Bearer sk_000000000000_unknown"}, "api_key_invalid", 'Bearer error="invalid_token"'),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "api_key_missing", "Bearer"),
        ({"Authorization": f"Bearer {_expired()}"}, "access_token_invalid", 'Bearer error="invalid_token"'),
        ({"Authorization": f"Bearer {_forged()}"}, "access_token_invalid", 'Bearer error="invalid_token"'),
        ({"Authorization": f"Bearer {_wrong_typ()}"}, "access_token_invalid", 'Bearer error="invalid_token"'),
        ({"Authorization": f"Bearer {_transformation_token()}"}, "access_token_invalid", 'Bearer error="invalid_token"'),
        ({"X-Session-Token": "not-a-token"}, "access_token_invalid", 'Bearer error="invalid_token"'),
    ],
    ids=["missing", "unknown-key", "not-bearer", "expired", "wrong-signature", "wrong-typ", "transformation-token", "session-garbage"],
)  # fmt: skip
async def test_refused_credentials_are_401_with_a_challenge(
    client: Client, headers: dict[str, str], code: str, challenge: str
) -> None:
    response = await client.get(f"/v3/images/{PRIVATE}/100.100.jpg", headers=headers)
    await assert_error(response, 401, code)
    assert response.headers["WWW-Authenticate"] == challenge


async def test_an_access_token_is_no_transformation_token(client: Client) -> None:
    response = await client.get(f"/images/{PRIVATE}", params={"token": access()})
    await assert_error(response, 401, "token_type_invalid", parameter="token")


async def test_a_cookie_does_not_authorise_a_write(client: Client) -> None:
    client.session.cookie_jar.update_cookies({"gateway_session": access(scope=WRITE)})
    response = await client.patch(f"/v1/images/{PRIVATE}", json={"description": "x"})
    error = await assert_error(response, 401, "cookie_cannot_write")
    assert error["source"] == {"header": "Cookie"}  # the culprit, not Authorization
    # The same token in a header may write.
    client.session.cookie_jar.clear()
    response = await client.patch(
        f"/v1/images/{PRIVATE}",
        json={"description": "x"},
        headers=bearer(access(scope=WRITE)),
    )
    assert response.status == 200


async def test_a_cookie_reads_the_catalog(client: Client) -> None:
    client.session.cookie_jar.update_cookies({"gateway_session": access()})
    response = await client.get(f"/v1/images/{PRIVATE}")
    assert response.status == 200


async def test_a_cookie_header_of_thousands_of_pairs_costs_one_scan(
    client: Client,
) -> None:
    """aiohttp's cookie parser rescans the rest of the header for every pair
    it cannot read: 8 KB of `a;a;…` took 16 ms of the event loop a request."""
    hostile = "z=1;" + "a;" * 3900
    session = f"{hostile}gateway_session={access()}"
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        response = await client.get(
            f"/v1/images/{PRIVATE}", headers={"Cookie": session}
        )
        best = min(best, time.perf_counter() - started)
        assert response.status == 200
    assert best < 0.008, f"{best * 1000:.1f} ms"
    # Without the session cookie the same header is anonymous, not an error.
    response = await client.get("/v1/images", headers={"Cookie": hostile})
    await assert_error(response, 401, "api_key_missing")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", f"/v1/images/{PRIVATE}", {"description": "x"}),
        ("DELETE", f"/v1/images/{PRIVATE}", None),
        ("POST", "/v1/images", {"origin": "https://example.org/a.jpg"}),
    ],
)
async def test_writes_need_the_write_scope(
    client: Client, method: str, path: str, body: object
) -> None:
    response = await client.request(method, path, json=body, headers=bearer(access()))
    await assert_error(response, 403, "insufficient_scope")
    assert response.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_scope", scope="images:write"'
    )


async def test_reads_need_the_read_scope(client: Client) -> None:
    token = access(scope="images:write")
    for path in (f"/v1/images/{PRIVATE}", f"/v3/images/{PRIVATE}/10.10.jpg"):
        response = await client.get(path, headers=bearer(token))
        await assert_error(response, 403, "insufficient_scope")


async def test_an_access_token_writes_with_the_write_scope(client: Client) -> None:
    response = await client.delete(
        f"/v1/images/{PRIVATE}", headers=bearer(access(scope=WRITE))
    )
    assert response.status == 204


async def test_another_issuers_image_stays_404(
    client: Client, credentials: Credentials
) -> None:
    for headers in (
        bearer(credentials.other_key),
        bearer(access(issuer=OTHER_ISSUER, key=OTHER_KEY)),
    ):
        for path in (f"/v3/images/{PRIVATE}/10.10.jpg", f"/v1/images/{PRIVATE}"):
            response = await client.get(path, headers=headers)
            await assert_error(response, 404, "image_not_found")


async def test_a_revoked_api_key_is_refused_at_once(
    client: Client, credentials: Credentials, catalog: SqliteCatalog
) -> None:
    path = f"/v3/images/{PRIVATE}/10.10.jpg"
    assert (await client.get(path, headers=bearer(credentials.key))).status == 200
    await catalog.revoke_api_key(SEED_ISSUER, credentials.key.split("_")[1])
    response = await client.get(path, headers=bearer(credentials.key))
    await assert_error(response, 401, "api_key_invalid")


async def test_a_revoked_signing_key_ends_its_access_tokens(
    client: Client, catalog: SqliteCatalog
) -> None:
    token = access()
    path = f"/v3/images/{PRIVATE}/10.10.jpg"
    assert (await client.get(path, headers=bearer(token))).status == 200
    await catalog.add_key(SEED_ISSUER, kid="next", secret="n" * 40)
    await catalog.revoke_key(SEED_ISSUER, SEED_KEY.kid)
    response = await client.get(path, headers=bearer(token))
    await assert_error(response, 401, "access_token_invalid")


async def test_a_key_revoked_elsewhere_stays_revoked_through_our_own_bookkeeping(
    client: Client, catalog: SqliteCatalog
) -> None:
    """`catalog` is another process's view (the CLI's). The server's next
    write (an ingest lease renewed in the background, before it looks again)
    noted a version that covers the revocation: it went unseen, and the
    revoked key verified until a restart."""
    token = access()
    path = f"/v3/images/{PRIVATE}/10.10.jpg"
    assert (await client.get(path, headers=bearer(token))).status == 200
    await catalog.add_key(SEED_ISSUER, kid="next", secret="n" * 40)
    await catalog.revoke_key(SEED_ISSUER, SEED_KEY.kid)
    await client.app[CATALOG].store.renew_ingests(
        owner="this-process", until="2999-01-01T00:00:00+00:00"
    )
    response = await client.get(path, headers=bearer(token))
    await assert_error(response, 401, "access_token_invalid")


# /v3: the sized binary


async def test_v3_answers_the_jpeg_fitted_never_enlarged(
    client: Client, credentials: Credentials
) -> None:
    for size, expected in (
        ("400.400.jpg", (400, 300)),
        ("100.300.jpg", (100, 75)),
        ("4000.4000.jpg", (1600, 1200)),
    ):
        response = await client.get(
            f"/v3/images/{PRIVATE}/{size}", headers=bearer(credentials.key)
        )
        assert response.status == 200
        body = await response.read()
        assert response.content_type == "image/jpeg"
        assert response.headers["Content-Length"] == str(len(body))
        assert response.headers["X-Request-Id"]
        assert size_of(body) == expected
        assert response.headers["Cache-Control"].startswith("private, max-age=")
        assert "Location" not in response.headers  # never a redirect  # fmt: skip


@pytest.mark.parametrize(
    "size",
    [
        "100x100.jpg",
        "100.100.png",
        "0.100.jpg",
        "100.0.jpg",
        "100.jpg",
        "100.100",
        "4097.10.jpg",
        "01.10.jpg",
        "-1.10.jpg",
        "1.1.1.jpg",
        "%20.1.jpg",
    ],
)
async def test_v3_refuses_other_sizes_naming_the_parameter(
    client: Client, credentials: Credentials, size: str
) -> None:
    response = await client.get(
        f"/v3/images/{PRIVATE}/{size}", headers=bearer(credentials.key)
    )
    await assert_error(response, 400, "parameter_invalid", parameter="size")


async def test_v3_unknown_image_is_404(
    client: Client, credentials: Credentials
) -> None:
    for image_id in ("99999999-9999-4999-8999-999999999999", "not-a-uuid"):
        response = await client.get(
            f"/v3/images/{image_id}/10.10.jpg", headers=bearer(credentials.key)
        )
        await assert_error(response, 404, "image_not_found")


async def test_v3_etag_and_304(client: Client, credentials: Credentials) -> None:
    path = f"/v3/images/{PRIVATE}/200.200.jpg"
    first = await client.get(path, headers=bearer(credentials.key))
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    assert not etag.startswith("W/")
    again = await client.get(
        path, headers={**bearer(credentials.key), "If-None-Match": etag}
    )
    assert again.status == 304
    assert await again.read() == b""
    other = await client.get(
        f"/v3/images/{PRIVATE}/201.200.jpg", headers=bearer(credentials.key)
    )
    assert other.headers["ETag"] != etag


async def test_v3_cors_for_a_configured_origin_and_its_preflight(
    client: Client, credentials: Credentials
) -> None:
    path = f"/v3/images/{PRIVATE}/10.10.jpg"
    origin = {"Origin": "https://app.example"}
    preflight = await client.options(
        path,
        headers={
            **origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed
    assert "x-session-token" in allowed
    response = await client.get(path, headers={**origin, **bearer(credentials.key)})
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Origin" in response.headers["Vary"]
    stranger = await client.get(
        path, headers={"Origin": "https://evil.example", **bearer(credentials.key)}
    )
    assert "Access-Control-Allow-Origin" not in stranger.headers
    refused = await client.options(path, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in refused.headers


# /image: public images


@pytest.mark.parametrize(
    ("ext", "media_type", "magic"),
    [
        ("jpg", "image/jpeg", b"\xff\xd8\xff"),
        ("jpeg", "image/jpeg", b"\xff\xd8\xff"),
        ("png", "image/png", b"\x89PNG"),
        ("webp", "image/webp", b"RIFF"),
        ("gif", "image/gif", b"GIF8"),
        ("avif", "image/avif", b"\x00\x00\x00"),
    ],
)
async def test_image_serves_each_format(
    client: Client, ext: str, media_type: str, magic: bytes
) -> None:
    response = await client.get(f"/image/{THEIRS}.{ext}", params={"w": "200"})
    assert response.status == 200, await response.text()
    assert response.content_type == media_type
    body = await response.read()
    assert body.startswith(magic)
    assert size_of(body) == (200, 150)
    with Image.open(io.BytesIO(body)) as picture:
        # An opaque photo stays opaque: no alpha plane in any format.
        assert "A" not in picture.mode
        assert "transparency" not in picture.info
    assert response.headers["Cache-Control"] == "public, max-age=86400"
    assert "Accept" not in response.headers.get("Vary", "")  # the URL names the format


@pytest.mark.parametrize("ext", ["bmp", "tiff", "JPG2", "svg", ""])
async def test_image_refuses_other_formats(client: Client, ext: str) -> None:
    response = await client.get(f"/image/{THEIRS}.{ext}")
    await assert_error(response, 400, "parameter_invalid", parameter="ext")


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"w": "0"}, "w"),
        ({"w": "-5"}, "w"),
        ({"w": "1.5"}, "w"),
        ({"h": "5000"}, "h"),
        ({"h": "abc"}, "h"),
        ({"crop": "yes"}, "crop"),
        ({"crop": "1"}, "crop"),
    ],
)
async def test_image_refuses_bad_parameters(
    client: Client, params: dict[str, str], parameter: str
) -> None:
    response = await client.get(f"/image/{THEIRS}.jpg", params=params)
    await assert_error(response, 400, "parameter_invalid", parameter=parameter)


@pytest.mark.parametrize(
    ("query", "parameter"),
    [("w=100&w=200", "w"), ("h=100&h=100", "h"), ("crop=true&crop=true", "crop")],
)
async def test_image_refuses_a_parameter_given_twice_as_ambiguous(
    client: Client, query: str, parameter: str
) -> None:
    # As `token` on /images and every /v1 parameter: the README's
    # `parameter_ambiguous`, "a parameter given twice".
    response = await client.get(f"/image/{THEIRS}.jpg?{query}")
    await assert_error(response, 400, "parameter_ambiguous", parameter=parameter)


async def test_image_crop_with_one_side_fits(client: Client) -> None:
    response = await client.get(
        f"/image/{THEIRS}.png", params={"w": "200", "crop": "true"}
    )
    assert size_of(await response.read()) == (200, 150)


async def test_image_crop_fills_the_box(client: Client) -> None:
    response = await client.get(
        f"/image/{THEIRS}.png", params={"w": "200", "h": "200", "crop": "true"}
    )
    assert size_of(await response.read()) == (200, 200)
    response = await client.get(
        f"/image/{THEIRS}.png", params={"w": "200", "h": "200", "crop": "false"}
    )
    assert size_of(await response.read()) == (200, 150)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"w": "190"}, (200, 150)),  # up to the 200 rung
        ({"w": "201"}, (256, 192)),  # the next one
        ({"w": "90", "h": "90", "crop": "true"}, (96, 96)),  # both sides scaled
        ({"h": "700"}, (960, 720)),  # longer side asked is the height here
        ({"w": "5", "h": "3"}, (51, 38)),  # the bottom rung: a 64x38 box
    ],
)
async def test_image_snaps_up_the_ladder(
    client: Client, params: dict[str, str], expected: tuple[int, int]
) -> None:
    response = await client.get(f"/image/{THEIRS}.jpg", params=params)
    assert response.status == 200
    assert size_of(await response.read()) == expected


async def test_image_snapping_never_crosses_the_cap(client: Client) -> None:
    # Cap 400: a request for 390 would snap to 400 anyway; 330 snaps to 400, not 480.
    response = await client.get(f"/image/{PUBLIC}.jpg", params={"w": "330"})
    assert response.status == 200
    assert size_of(await response.read()) == (400, 300)
    assert response.headers["Cache-Control"] == "public, max-age=86400"
    # With no size at all, the cap.
    response = await client.get(f"/image/{PUBLIC}.jpg")
    assert size_of(await response.read()) == (400, 300)


async def test_image_private_and_unknown_are_the_same_404(
    client: Client, credentials: Credentials
) -> None:
    answers = []
    for image_id in (PRIVATE, "99999999-9999-4999-8999-999999999999", "nope"):
        for headers in ({}, bearer(credentials.key)):
            response = await client.get(f"/image/{image_id}.jpg", headers=headers)
            error = await assert_error(response, 404, "image_not_found")
            answers.append((error["detail"], error.get("source")))
    assert len(set(map(repr, answers))) == 1


# The access table, on both paths: below / above the cap, by who asks


@pytest.mark.parametrize(
    ("who", "public_status", "v3_status"),
    [
        ("anonymous", 401, 401),
        ("no-roles", 403, 403),
        ("wrong-roles", 403, 403),
        ("right-roles", 200, 200),
        ("right-roles-token", 200, 200),
        ("other-issuer", 403, 404),
    ],
)
async def test_above_the_cap(
    client: Client,
    credentials: Credentials,
    who: str,
    public_status: int,
    v3_status: int,
) -> None:
    headers = {
        "anonymous": {},
        "no-roles": bearer(credentials.key),
        "wrong-roles": bearer(access(roles=("visitor",))),
        "right-roles": bearer(credentials.staff_key),
        "right-roles-token": bearer(access(roles=("staff", "visitor"))),
        "other-issuer": bearer(credentials.other_key),
    }[who]
    public = await client.get(
        f"/image/{PUBLIC}.jpg", params={"w": "800"}, headers=headers
    )
    assert public.status == public_status, await public.text()
    sized = await client.get(f"/v3/images/{PUBLIC}/800.800.jpg", headers=headers)
    assert sized.status == (v3_status if who != "anonymous" else 401)
    if public_status == 200:
        assert size_of(await public.read()) == (800, 600)
        # It needed a credential: no shared cache may keep it.
        assert public.headers["Cache-Control"].startswith("private")
        assert "Authorization" in public.headers["Vary"]
        assert "Cookie" in public.headers["Vary"]
    elif public_status == 401:
        await assert_error(public, 401, "credential_required")
    else:
        await assert_error(public, 403, "role_required")


@pytest.mark.parametrize(
    "who", ["anonymous", "no-roles", "wrong-roles", "right-roles", "other-issuer"]
)
async def test_at_or_below_the_cap_anyone_may_have_the_public_image(
    client: Client, credentials: Credentials, who: str
) -> None:
    headers = {
        "anonymous": {},
        "no-roles": bearer(credentials.key),
        "wrong-roles": bearer(access(roles=("visitor",))),
        "right-roles": bearer(credentials.staff_key),
        "other-issuer": bearer(credentials.other_key),
    }[who]
    public = await client.get(
        f"/image/{PUBLIC}.jpg", params={"w": "400"}, headers=headers
    )
    assert public.status == 200
    assert public.headers["Cache-Control"] == "public, max-age=86400"
    sized = await client.get(f"/v3/images/{PUBLIC}/400.400.jpg", headers=headers)
    expected = {"anonymous": 401, "other-issuer": 404}.get(who, 200)
    assert sized.status == expected


async def test_patch_sets_roles_and_cap_and_the_policy_follows(
    client: Client, credentials: Credentials
) -> None:
    headers = bearer(credentials.key)
    path = f"/image/{THEIRS}.jpg"
    assert (await client.get(path, params={"w": "800"})).status == 200
    response = await client.patch(
        f"/v1/images/{THEIRS}",
        json={"maxUnauthorised": 100, "roles": ["staff"]},
        headers=bearer(credentials.other_key),
    )
    attributes = (await response.json(content_type=None))["data"]["attributes"]
    assert attributes["maxUnauthorised"] == 100
    assert attributes["roles"] == ["staff"]
    await assert_error(
        await client.get(path, params={"w": "800"}), 401, "credential_required"
    )
    await assert_error(
        await client.get(path, params={"w": "800"}, headers=headers),
        403,
        "role_required",
    )
    response = await client.patch(
        f"/v1/images/{THEIRS}",
        json={"maxUnauthorised": -1, "roles": None},
        headers=bearer(credentials.other_key),
    )
    attributes = (await response.json(content_type=None))["data"]["attributes"]
    assert attributes["maxUnauthorised"] == -1
    assert attributes["roles"] == []
    assert (await client.get(path, params={"w": "800"})).status == 200


@pytest.mark.parametrize(
    "body",
    [
        {"roles": "staff"},
        {"roles": ["a b"]},
        {"roles": [1]},
        {"maxUnauthorised": -2},
        {"maxUnauthorised": "5"},
    ],
)
async def test_patch_refuses_bad_roles_and_caps(
    client: Client, credentials: Credentials, body: dict[str, object]
) -> None:
    response = await client.patch(
        f"/v1/images/{PRIVATE}", json=body, headers=bearer(credentials.key)
    )
    (name,) = body
    await assert_error(response, 422, "field_invalid", pointer=f"/{name}")


async def test_public_images_link_their_public_urls(
    client: Client, credentials: Credentials
) -> None:
    response = await client.get(
        f"/v1/images/{THEIRS}", headers=bearer(credentials.other_key)
    )
    links = (await response.json(content_type=None))["data"]["links"]
    assert links["public"].endswith(f"/image/{THEIRS}.jpg")
    assert links["publicThumbnail"].endswith(
        f"/image/{THEIRS}.jpg?w=200&h=200&crop=true"
    )
    assert (await client.get(URL(links["publicThumbnail"]).path_qs)).status == 200
    private = await client.get(f"/v1/images/{PRIVATE}", headers=bearer(credentials.key))
    links = (await private.json(content_type=None))["data"]["links"]
    assert "public" not in links
    assert "publicThumbnail" not in links


async def test_a_remembered_access_token_is_verified_again_past_its_exp(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verified tokens are remembered for speed, never past their `exp`."""
    from gateway.keys import AUTHENTICATOR

    verifier = client.app[AUTHENTICATOR].verifier
    calls: list[str] = []
    real = verifier.verify

    def counted(token: str | None, *, now: float | None = None) -> AccessToken:
        calls.append(str(token))
        return real(token, now=now)

    monkeypatch.setattr(verifier, "verify", counted)
    token = access(ttl=120)
    path = f"/v3/images/{PRIVATE}/10.10.jpg"
    for _ in range(3):
        assert (await client.get(path, headers=bearer(token))).status == 200
    assert len(calls) == 1  # remembered
    later = time.time() + 120 + 31  # past exp and the default 30 s leeway
    monkeypatch.setattr("gateway.http.credentials.time.time", lambda: later)
    await client.get(path, headers=bearer(token))
    assert len(calls) == 2  # the memo no longer vouches for it
