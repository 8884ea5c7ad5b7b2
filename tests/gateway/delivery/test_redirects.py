"""GET /images/{id}?token=…: the seed's 302, and every refusal, through HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import time

import jwt
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

from gateway import Settings, create_app
from gateway.catalog import SqliteCatalog
from gateway.delivery.headers import redirect_body
from signing import IssuerKey, TokenVerifier, VerifiedToken
from tests.conftest import (
    API_SECRET,
    OTHER_IMAGE,
    OTHER_KEY,
    SEED_IMAGE,
    SEED_ISSUER,
    SEED_KEY,
    SEED_OVERLAY_1,
    SEED_TRANSFORMATIONS,
    Client,
    Mint,
)
from tests.helpers import assert_error

SEED_PATH = (
    "c_fit,h_1920,w_1920/fl_attachment/dpr_auto,q_auto,f_auto/c_fit,w_800/"
    "c_fit,l_authenticated:3bc669b21d8e,w_800,x_800/"
    "c_fit,l_authenticated:e199b75435bf,w_800,x_1200/v123123/f7332109c6c5.jpg"
)
SEED_HEADERS = {
    "Cache-Control": "no-cache, no-store",
    "Pragma": "no-cache",
    "Expires": "Fri, 01 Jan 1990 00:00:00 GMT",
    "Access-Control-Allow-Origin": "*",
    "Content-Type": "text/html; charset=utf-8",
    "Vary": "Accept-Encoding",
    "P3P": 'CP="NOI ADM DEV PSAi COM NAV OUR OTRo STP IND DEM"',
    "X-Content-Type-Options": "nosniff",
    "X-XSS-Protection": "1; mode=block",
    "X-Download-Options": "noopen",
    "X-Permitted-Cross-Domain-Policies": "none",
    "Referrer-Policy": "origin-when-cross-origin, strict-origin-when-cross-origin",
}


def seed_location() -> str:
    signed = SEED_PATH.replace("/v123123/", "/") + API_SECRET
    digest = hashlib.sha1(signed.encode()).digest()  # noqa: S324 - Cloudinary's scheme
    sig = base64.urlsafe_b64encode(digest).decode()[:8]
    return f"https://res.cloudinary.com/sadaasdasd/image/authenticated/s--{sig}--/{SEED_PATH}"


def path(token: str, image: str = SEED_IMAGE) -> str:
    return f"/images/{image}?token={token}"


async def test_seed_token_redirects_to_the_seed_url(
    client: Client, mint_token: Mint
) -> None:
    response = await client.get(path(mint_token()), allow_redirects=False)
    assert response.status == 302
    location = seed_location()
    assert response.headers["Location"] == location
    for name, value in SEED_HEADERS.items():
        assert response.headers[name] == value, name
    body = await response.text()
    assert body == (
        f'<html><body>You are being <a href="{location}">redirected</a>.</body></html>'
    )
    # The seed's 362 bytes, less its 36-byte `http://example.org/assets/blank.jpg#`.
    assert int(response.headers["Content-Length"]) == 362 - 36
    assert re.fullmatch(r"\d+\.\d{6}", response.headers["X-Runtime"])
    assert re.fullmatch(r"[0-9a-f-]{36}", response.headers["X-Request-Id"])


async def test_seeds_own_token_shape_is_accepted(client: Client) -> None:
    """Seed 004's header (typ, alg; no kid) and claims (iss, transformations only)."""
    import jwt

    token = jwt.encode(
        {"iss": SEED_ISSUER, "transformations": SEED_TRANSFORMATIONS},
        SEED_KEY.secret,
        algorithm="HS256",
        headers={"typ": "JWT", "alg": "HS256"},
    )
    assert token.startswith("eyJ")
    response = await client.get(path(token), allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == seed_location()


async def test_repeated_token_gives_the_same_redirect(
    client: Client, mint_token: Mint
) -> None:
    token = mint_token()
    first = await client.get(path(token), allow_redirects=False)
    second = await client.get(path(token), allow_redirects=False)
    assert first.headers["Location"] == second.headers["Location"]
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]


async def test_head_answers_the_same_headers_without_body(
    client: Client, mint_token: Mint
) -> None:
    token = mint_token()
    get = await client.get(path(token), allow_redirects=False)
    head = await client.head(path(token), allow_redirects=False)
    assert head.status == 302
    assert head.headers["Location"] == get.headers["Location"]
    assert head.headers["Content-Length"] == get.headers["Content-Length"]
    assert await head.read() == b""


def test_html_body_escapes_the_url() -> None:
    # No Cloudinary URL we compile holds these; the body must stay inert if one did.
    body = redirect_body("https://x.example/a\"><script>alert('&')</script>")
    assert body == (
        b'<html><body>You are being <a href="https://x.example/a&quot;&gt;'
        b'&lt;script&gt;alert(&#x27;&amp;&#x27;)&lt;/script&gt;">redirected</a>.'
        b"</body></html>"
    )


async def test_client_request_id_is_kept_when_plain(client: Client) -> None:
    response = await client.get("/status", headers={"X-Request-Id": "edge-1234abcd"})
    assert response.headers["X-Request-Id"] == "edge-1234abcd"


async def test_client_request_id_is_replaced_when_odd(client: Client) -> None:
    response = await client.get("/status", headers={"X-Request-Id": "<script>x"})
    assert re.fullmatch(r"[0-9a-f-]{36}", response.headers["X-Request-Id"])


@pytest.mark.parametrize(
    "credential",
    [
        pytest.param("sk_0123456789ab_" + "S" * 32, id="api-key"),
        pytest.param("eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln", id="jwt"),
        pytest.param("edge:eyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.c2ln", id="jwt-inside"),
    ],
)
async def test_a_credential_sent_as_request_id_is_neither_kept_nor_echoed(
    client: Client, credential: str
) -> None:
    """A misconfigured client's key in X-Request-Id would be echoed and
    logged in every line: it is replaced like any odd id."""
    response = await client.get("/status", headers={"X-Request-Id": credential})
    assert re.fullmatch(r"[0-9a-f-]{36}", response.headers["X-Request-Id"])


def bad_tokens() -> list[object]:
    now = time.time()
    return [
        pytest.param("", 401, "token_missing", id="empty"),
        pytest.param("not.a.jwt", 401, "token_malformed", id="not-a-jwt"),
        pytest.param(
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
            + base64.urlsafe_b64encode(json.dumps({"iss": SEED_ISSUER}).encode())
            .decode()
            .rstrip("=")
            + ".",
            401,
            "token_algorithm_not_allowed",
            id="alg-none",
        ),
        pytest.param(
            {"key": IssuerKey(kid=SEED_KEY.kid, secret="w" * 40)},
            401,
            "token_signature_invalid",
            id="bad-signature",
        ),
        pytest.param(
            {"key": OTHER_KEY}, 401, "token_key_unknown", id="another-issuers-key"
        ),
        pytest.param({"ttl": -3600}, 401, "token_expired", id="expired"),
        pytest.param(
            {"now": now + 3600, "ttl": 7200},
            401,
            "token_not_yet_valid",
            id="future-iat",
        ),
        pytest.param(
            {"issuer": "11111111-2222-4333-8444-555555555555"},
            401,
            "token_issuer_unknown",
            id="unknown-issuer",
        ),
        pytest.param(
            {"key": IssuerKey(kid="nope", secret=SEED_KEY.secret)},
            401,
            "token_key_unknown",
            id="unknown-kid",
        ),
        pytest.param("e" * 4097, 400, "token_too_large", id="over-4-KiB"),
    ]


@pytest.mark.parametrize(("token", "status", "code"), bad_tokens())
async def test_bad_token_is_refused(
    client: Client, mint_token: Mint, token: object, status: int, code: str
) -> None:
    if isinstance(token, dict):
        token = mint_token(**token)
    response = await client.get(path(str(token)), allow_redirects=False)
    await assert_error(response, status, code, parameter="token")


def _signed_claims(claims: str) -> str:
    """A token of the seed's key whose payload is exactly `claims` (raw JSON)."""
    return jwt.api_jws.encode(
        claims.encode(),
        SEED_KEY.secret,
        algorithm="HS256",
        headers={"kid": SEED_KEY.kid},
    )


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        pytest.param(
            f'{{"iss": "{SEED_ISSUER}", "exp": "9999999999"}}',
            "token_claim_invalid",
            id="exp-a-numeric-string",
        ),
        pytest.param(
            f'{{"iss": "{SEED_ISSUER}", "nbf": true}}',
            "token_claim_invalid",
            id="nbf-a-bool",
        ),
        pytest.param(
            f'{{"iss": "{SEED_ISSUER}", "exp": 1{"0" * 400}}}',
            "token_claim_invalid",
            id="exp-400-digits",
        ),
        pytest.param(
            f'{{"iss": "{SEED_ISSUER}", "iat": NaN}}',
            "token_claim_invalid",
            id="iat-nan",
        ),
    ],
)
async def test_time_claims_must_be_numeric_dates(
    client: Client, claims: str, code: str
) -> None:
    """RFC 7519 NumericDate: a JSON number of a real date, or the token is refused."""
    response = await client.get(path(_signed_claims(claims)), allow_redirects=False)
    await assert_error(response, 401, code, parameter="token")


async def test_a_token_with_non_ascii_characters_is_malformed(client: Client) -> None:
    response = await client.get(path("eyJ\u00e9.e30.x"), allow_redirects=False)
    await assert_error(response, 401, "token_malformed", parameter="token")


async def test_missing_token_is_401(client: Client) -> None:
    response = await client.get(f"/images/{SEED_IMAGE}", allow_redirects=False)
    await assert_error(response, 401, "token_missing", parameter="token")


async def test_two_tokens_are_refused(client: Client, mint_token: Mint) -> None:
    token = mint_token()
    response = await client.get(f"{path(token)}&token={token}", allow_redirects=False)
    await assert_error(response, 400, "parameter_ambiguous", parameter="token")


@pytest.mark.parametrize(
    ("steps", "code", "pointer"),
    [
        pytest.param(
            [{"crop": "fit", "width": 0}],
            "transform_invalid",
            "/transformations/0/width",
            id="invalid-width",
        ),
        pytest.param(
            [{"width": 10}, {"crop": "fit", "width": 10, "bogus": 1}],
            "transform_invalid",
            "/transformations/1/bogus",
            id="unknown-key",
        ),
        pytest.param(
            [{"width": 10, "crop": "fit,l_fetch:aHR0cHM6Ly9ldmls"}],
            "transform_invalid",
            "/transformations/0/crop",
            id="fetch-injection",
        ),
        pytest.param(
            [{"width": 1}] * 17,
            "transform_too_many_steps",
            "/transformations",
            id="steps",
        ),
        pytest.param(
            [{"overlay": SEED_OVERLAY_1}] * 9,
            "transform_too_many_overlays",
            "/transformations",
            id="overlays",
        ),
        pytest.param(
            {"crop": "fit"}, "transform_invalid", "/transformations", id="not-a-list"
        ),
        pytest.param(5, "transform_invalid", "/transformations", id="a-number"),
        pytest.param(None, "transform_invalid", "/transformations", id="null"),
        pytest.param(
            [{"width": [1]}],
            "transform_invalid",
            "/transformations/0/width",
            id="width-a-list",
        ),
        pytest.param(
            [{"crop": "pad", "width": 8, "background": 255}],
            "transform_invalid",
            "/transformations/0/background",
            id="background-a-number",
        ),
        pytest.param(
            [[{"width": 8}]],
            "transform_invalid",
            "/transformations/0",
            id="step-a-list",
        ),
    ],
)
async def test_invalid_transformation_is_400_with_pointer(
    client: Client, mint_token: Mint, steps: object, code: str, pointer: str
) -> None:
    response = await client.get(path(mint_token(steps)), allow_redirects=False)
    await assert_error(response, 400, code, pointer=pointer)


async def test_subject_of_another_image_is_403(
    client: Client, mint_token: Mint
) -> None:
    token = mint_token(subject=SEED_OVERLAY_1)
    response = await client.get(path(token), allow_redirects=False)
    await assert_error(response, 403, "token_subject_mismatch")


async def test_subject_of_this_image_redirects(
    client: Client, mint_token: Mint
) -> None:
    token = mint_token(subject=SEED_IMAGE)
    response = await client.get(path(token), allow_redirects=False)
    assert response.status == 302


@pytest.mark.parametrize(
    "image",
    [
        pytest.param("c0ffee00-0000-4000-8000-000000000000", id="unknown"),
        pytest.param(OTHER_IMAGE, id="another-issuers"),
        pytest.param("not-a-uuid", id="not-an-id"),
        pytest.param("..%2F..%2Fetc%2Fpasswd", id="traversal"),
    ],
)
async def test_image_outside_the_issuer_is_404(
    client: Client, mint_token: Mint, image: str
) -> None:
    response = await client.get(path(mint_token(), image), allow_redirects=False)
    await assert_error(response, 404, "image_not_found")


async def test_overlay_of_another_issuer_is_404_with_pointer(
    client: Client, mint_token: Mint
) -> None:
    steps = [{"width": 10}, {"overlay": OTHER_IMAGE, "x": 10}]
    response = await client.get(path(mint_token(steps)), allow_redirects=False)
    await assert_error(
        response, 404, "image_not_found", pointer="/transformations/1/overlay"
    )


async def test_other_issuer_reaches_its_own_image(
    client: Client, mint_token: Mint
) -> None:
    from tests.conftest import OTHER_ISSUER

    token = mint_token([], key=OTHER_KEY, issuer=OTHER_ISSUER)
    response = await client.get(path(token, OTHER_IMAGE), allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"].endswith("/v1/other.jpg")


async def test_key_rotation_kid_picks_and_revocation_is_immediate(
    client: Client, mint_token: Mint, catalog: SqliteCatalog
) -> None:
    old = mint_token()
    assert (await client.get(path(old), allow_redirects=False)).status == 302
    new_key = await catalog.add_key(SEED_ISSUER, kid="seed-2")
    new = mint_token(key=new_key)
    assert (await client.get(path(new), allow_redirects=False)).status == 302
    assert (await client.get(path(old), allow_redirects=False)).status == 302
    await catalog.revoke_key(SEED_ISSUER, SEED_KEY.kid)
    response = await client.get(path(old), allow_redirects=False)
    await assert_error(response, 401, "token_key_unknown")
    assert (await client.get(path(new), allow_redirects=False)).status == 302


async def test_deleted_image_is_404_at_once(
    client: Client, mint_token: Mint, catalog: SqliteCatalog
) -> None:
    token = mint_token()
    assert (await client.get(path(token), allow_redirects=False)).status == 302
    await catalog.remove_image(SEED_IMAGE)
    response = await client.get(path(token), allow_redirects=False)
    await assert_error(response, 404, "image_not_found")


async def test_expired_cached_token_is_refused(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
) -> None:
    from dataclasses import replace

    client = await aiohttp_client(
        create_app(replace(settings, tokens=replace(settings.tokens, leeway=0)))
    )
    # `exp` is whole seconds after a whole-second `iat`: a 1 s token minted
    # late in a second had expired before its first request (a flaky test).
    token = mint_token(ttl=2)
    assert (await client.get(path(token), allow_redirects=False)).status == 302
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    await asyncio.sleep(max(0.0, expires - time.time()) + 0.05)
    response = await client.get(path(token), allow_redirects=False)
    await assert_error(response, 401, "token_expired")


async def test_unexpected_error_is_a_logged_json_500(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    catalog: SqliteCatalog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    app = create_app(settings)
    app.router.add_get("/broken", broken)
    client = await aiohttp_client(app)
    response = await client.get("/broken")
    error = await assert_error(response, 500, "internal_error")
    assert "secret internals" not in str(error)
    assert response.headers["X-Request-Id"] in caplog.text
    assert "secret internals" in caplog.text


async def test_status_reports_ok(client: Client) -> None:
    response = await client.get("/status")
    assert response.status == 200
    doc = await response.json(content_type=None)
    assert doc["data"]["attributes"]["status"] == "ok"
    assert doc["data"]["attributes"]["delivery"] == "redirect"


async def test_status_catalog_revision_moves_when_the_catalog_changes(
    client: Client, catalog: SqliteCatalog
) -> None:
    async def revision() -> object:
        doc = await (await client.get("/status")).json(content_type=None)
        return doc["data"]["attributes"]["catalogRevision"]

    before = await revision()
    assert await revision() == before
    await catalog.add_issuer(name="another process's write")
    assert await revision() != before


class _Clock:
    """Stands in for the `time` module inside `gateway.delivery.resolver`."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("ttl", "later", "verified_again"),
    [
        pytest.param(None, 1.0, False, id="no-exp-same-window"),
        pytest.param(None, 301.0, True, id="no-exp-next-window"),
        pytest.param(600, 1.0, False, id="exp-same-window"),
    ],
)
async def test_a_remembered_answer_is_verified_again_after_its_window(
    settings: Settings,
    catalog: SqliteCatalog,
    mint_token: Mint,
    monkeypatch: pytest.MonkeyPatch,
    ttl: float | None,
    later: float,
    verified_again: bool,
) -> None:
    """A token without `exp` is remembered for at most one 300-second window."""
    from gateway.catalog import CachedCatalog
    from gateway.delivery import resolver

    clock = _Clock(time.time() // 300 * 300 + 10)  # early in a window
    monkeypatch.setattr(resolver, "time", clock)
    verifications = 0
    real_verify = TokenVerifier.verify

    def counting_verify(
        self: TokenVerifier, token: str | None, *, now: float | None = None
    ) -> VerifiedToken:
        nonlocal verifications
        verifications += 1
        return real_verify(self, token, now=now)

    monkeypatch.setattr(TokenVerifier, "verify", counting_verify)
    view = CachedCatalog(catalog, size=16, poll_interval=60.0)
    deliverer = resolver.Resolver(settings, view)
    token = mint_token(ttl=ttl)
    first = await deliverer.redirect(token, SEED_IMAGE)
    clock.now += later
    assert await deliverer.redirect(token, SEED_IMAGE) == first
    assert verifications == (2 if verified_again else 1)
