"""The image-gateway command: issuers, images and tokens that then work over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from gateway import Settings, create_app
from gateway.cli import main

CLOUD = "cloudinary://1234:cli-api-secret@sadaasdasd"


def run(
    capsys: pytest.CaptureFixture[str], environ: dict[str, str], *argv: str
) -> dict[str, object]:
    assert main(list(argv), environ) == 0
    doc = json.loads(capsys.readouterr().out)
    assert isinstance(doc, dict)
    return doc


async def test_minted_url_redirects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], aiohttp_client: AiohttpClient
) -> None:
    env = {"GATEWAY_DATA_DIR": str(tmp_path), "CLOUDINARY_URL": CLOUD}
    issuer = run(capsys, env, "issuer", "add", "--name", "shop")
    assert {"id", "kid", "secret"} <= issuer.keys()
    assert len(str(issuer["secret"])) >= 32
    image = run(
        capsys, env, "image", "add", "--issuer", str(issuer["id"]),
        "--public-id", "shop/shoe", "--version", "7", "--format", "png",
    )  # fmt: skip
    minted = run(
        capsys, env, "token", "mint", "--issuer", str(issuer["id"]),
        "--image", str(image["id"]), "--transformations", '[{"crop":"fit","width":80}]',
        "--ttl", "60",
    )  # fmt: skip
    assert str(minted["url"]).startswith(
        f"http://127.0.0.1:8080/images/{image['id']}?token="
    )

    client = await aiohttp_client(create_app(Settings.from_env(env)))
    path = str(minted["url"]).removeprefix("http://127.0.0.1:8080")
    response = await client.get(path, allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"].endswith("/c_fit,w_80/v7/shop/shoe.png")


def test_rotated_key_is_used_for_new_tokens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"GATEWAY_DATA_DIR": str(tmp_path)}
    issuer = run(capsys, env, "issuer", "add", "--kid", "k1")
    key = run(capsys, env, "issuer", "signing-key", "add", "--issuer", str(issuer["id"]), "--kid", "k2")  # fmt: skip
    assert key["kid"] == "k2"
    run(capsys, env, "issuer", "signing-key", "revoke", "--issuer", str(issuer["id"]), "--kid", "k1")  # fmt: skip
    assert main(["issuer", "list"], env) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["kids"] == ["k2"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["issuer", "add", "--secret", "short"], "32 bytes", id="weak-secret"),
        pytest.param(["issuer", "add", "--id", "x"], "UUID", id="bad-id"),
        pytest.param(
            ["image", "add", "--issuer", "00000000-0000-4000-8000-000000000000",
             "--public-id", "a,b"],
            "public id",
            id="bad-public-id",
        ),
        pytest.param(
            ["image", "add", "--issuer", "00000000-0000-4000-8000-000000000000",
             "--public-id", "ok"],
            "unknown",
            id="unknown-issuer",
        ),
        pytest.param(
            ["token", "mint", "--issuer", "00000000-0000-4000-8000-000000000000",
             "--image", "x", "--transformations", '[{"width": 0}]'],
            "/transformations/0/width",
            id="bad-transformation",
        ),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv, {"GATEWAY_DATA_DIR": str(tmp_path)}) == 2
    assert message in capsys.readouterr().err
