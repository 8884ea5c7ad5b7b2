"""The image-gateway command: issuers, images and tokens that then work over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from gateway import Settings, create_app
from gateway.cli import main
from tests.helpers import announced
from tests.images import pixel_bomb

CLOUD = "cloudinary://1234:cli-api-secret@sadaasdasd"


def run(
    capsys: pytest.CaptureFixture[str], environ: dict[str, str], *argv: str
) -> dict[str, object]:
    """Run a command as the shell would: on a thread with no event loop of its own."""
    with ThreadPoolExecutor(1) as thread:
        assert thread.submit(main, list(argv), environ).result() == 0
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
            "no issuer 00000000-0000-4000-8000-000000000000",
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


def _jpeg(size: tuple[int, int] = (40, 30)) -> bytes:
    from tests.images import RED, solid

    return solid(size, RED, "JPEG")


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        pytest.param("corrupt.jpg", b"\xff\xd8\xff" + b"\x00" * 200, "corrupt JPEG", id="corrupt"),
        pytest.param("cut.jpg", _jpeg((400, 300))[:300], "cannot be", id="truncated"),
        pytest.param("doc.jpg", b"%PDF-1.7\n%\xe2\xe3\n1 0 obj<<>>\nendobj\n", "not a JPEG", id="pdf-renamed"),
        pytest.param("bomb.png", pixel_bomb(40000, 40000), "pixels", id="pixel-bomb"),
        pytest.param("empty.png", b"", "not a JPEG", id="empty"),
    ],
)  # fmt: skip
def test_bad_original_is_refused_and_leaves_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    data: bytes,
    message: str,
) -> None:
    env = {"GATEWAY_DATA_DIR": str(tmp_path / "data")}
    issuer = run(capsys, env, "issuer", "add")
    file = tmp_path / name
    file.write_bytes(data)
    argv = ["image", "add", "--issuer", str(issuer["id"]), "--file", str(file)]
    assert main(argv, env) == 2
    assert message in capsys.readouterr().err
    assert main(["image", "list", "--issuer", str(issuer["id"])], env) == 0
    assert json.loads(capsys.readouterr().out) == []
    stored = [p for p in (tmp_path / "data" / "originals").rglob("*") if p.is_file()]
    assert stored == []


def test_original_is_recorded_from_its_bytes_and_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"GATEWAY_DATA_DIR": str(tmp_path / "data")}
    issuer = run(capsys, env, "issuer", "add")
    file = tmp_path / "photo.png"  # a JPEG named .png
    file.write_bytes(_jpeg())
    image = run(
        capsys, env, "image", "add", "--issuer", str(issuer["id"]), "--file", str(file)
    )
    assert (image["mediaType"], image["width"], image["height"]) == (
        "image/jpeg",
        40,
        30,
    )
    assert image["originalFilename"] == "photo.png"
    stored = (
        tmp_path
        / "data"
        / "originals"
        / str(image["sha256"])[:2]
        / str(image["sha256"])
    )
    assert stored.read_bytes() == file.read_bytes()
    run(capsys, env, "image", "rm", "--id", str(image["id"]))
    assert not stored.exists()


def test_api_keys_are_printed_once_listed_by_prefix_and_revoked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"GATEWAY_DATA_DIR": str(tmp_path)}
    issuer = run(capsys, env, "issuer", "add")
    first = str(issuer["api_key"])
    assert first.startswith("sk_")
    created = run(capsys, env, "issuer", "key", "create", "--issuer", str(issuer["id"]))
    second = str(created["api_key"])
    assert main(["issuer", "key", "list", "--issuer", str(issuer["id"])], env) == 0
    listed = json.loads(capsys.readouterr().out)
    prefixes = [k["prefix"] for k in listed]
    assert prefixes == ["_".join(first.split("_")[:2]), "_".join(second.split("_")[:2])]
    # Printed with the key, as `list` shows it and `revoke` takes it.
    assert [issuer["api_key_prefix"], created["prefix"]] == prefixes
    assert first not in json.dumps(listed)
    run(
        capsys,
        env,
        "issuer",
        "key",
        "revoke",
        "--issuer",
        str(issuer["id"]),
        "--prefix",
        prefixes[0],
    )
    assert main(["issuer", "key", "list", "--issuer", str(issuer["id"])], env) == 0
    assert json.loads(capsys.readouterr().out)[0]["revokedAt"] is not None


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_a_new_key_is_as_long_as_its_algorithm_asks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], algorithm: str
) -> None:
    """RFC 7518 §3.2: at least the hash size; pyjwt warns (an error here) below it."""
    env = {"GATEWAY_DATA_DIR": str(tmp_path)}
    issuer = run(capsys, env, "issuer", "add", "--algorithm", algorithm)
    hash_bytes = int(algorithm[2:]) // 8
    assert len(str(issuer["secret"]).encode()) >= hash_bytes
    image = run(
        capsys, env, "image", "add", "--issuer", str(issuer["id"]),
        "--public-id", "shop/shoe",
    )  # fmt: skip
    minted = run(
        capsys, env, "token", "mint", "--issuer", str(issuer["id"]),
        "--image", str(image["id"]),
    )  # fmt: skip
    assert minted["token"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_demo_says_open_the_demo_page(tmp_path: Path) -> None:
    """The README's first command, as a newcomer runs it."""
    port = _free_port()
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_PORT": str(port)}
    env.pop("CLOUDINARY_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        printed: dict[str, str] = {}
        for line in server.stdout:
            name, _, value = announced(line).partition(": ")
            printed[name.strip()] = value.strip()
            if "open the demo page" in printed:
                break
        # Announced once bound, never before.
        assert next(iter(printed)).startswith("image-gateway listening on")
        assert printed["open the demo page"] == f"http://127.0.0.1:{port}/demo"
        page = printed["open the demo page"]
        with urllib.request.urlopen(page, timeout=10) as answer:  # noqa: S310 - loopback
            assert answer.status == 200
            assert answer.headers["Content-Type"].startswith("text/html")
    finally:
        server.terminate()
        server.communicate(timeout=10)  # waits, and closes its stdout


def _gateway(
    env: dict[str, str], *argv: str, timeout: float = 30, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m gateway ARGV` as an operator runs it; its status not checked."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


def test_serve_refuses_an_empty_catalog_file_in_one_line(tmp_path: Path) -> None:
    """A zero-byte catalog is not a new one: start-up stops, naming the file."""
    (tmp_path / "catalog.sqlite3").write_bytes(b"")
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path)}
    env["GATEWAY_PORT"] = str(_free_port())
    result = _gateway(env, "serve", timeout=30)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("image-gateway: ")
    assert str(tmp_path / "catalog.sqlite3") in line
    assert (tmp_path / "catalog.sqlite3").read_bytes() == b""


@pytest.mark.parametrize(
    ("variable", "value", "file"),
    [
        ("GATEWAY_DATA_DIR", "var", "var/catalog.sqlite3"),
        ("GATEWAY_DATABASE_URL", "sqlite:///{tmp}/elsewhere.db", "elsewhere.db"),
    ],
)
def test_a_command_that_makes_a_new_catalog_says_so_once(
    tmp_path: Path, variable: str, value: str, file: str
) -> None:
    """Run from another directory, `./var` is a new catalog: `[]` alone misled."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env[variable] = value.format(tmp=tmp_path)
    made = (
        f"image-gateway: no catalog was at {tmp_path / file}; made a new one"
        f" there ({variable} says where)"
    )
    first = _gateway(env, "issuer", "list", timeout=30, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == []
    assert first.stderr.strip() == made
    again = _gateway(env, "issuer", "list", timeout=30, cwd=tmp_path)
    assert (again.returncode, again.stderr) == (0, "")
    # A command that then fails says it all the same: the new file stays.
    (tmp_path / file).unlink()
    failed = _gateway(env, "issuer", "key", "list", "--issuer", str(uuid.uuid4()), timeout=30, cwd=tmp_path)  # fmt: skip
    assert failed.returncode == 2
    assert failed.stderr.splitlines()[0] == made


@pytest.mark.parametrize(
    ("argv", "status"),
    [
        pytest.param(["--help"], 0, id="help"),
        pytest.param(["issuer", "list"], 2, id="a-command"),
        pytest.param(["serve"], 2, id="serve"),
    ],
)
def test_a_malformed_cloudinary_url_is_one_line_never_a_traceback(
    tmp_path: Path, argv: list[str], status: int
) -> None:
    """The SDK refuses a bad CLOUDINARY_URL at import: it is not imported first."""
    env = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "CLOUDINARY_URL": "https://x",
    }
    result = _gateway(env, *argv, timeout=30)
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    if status:
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("image-gateway: CLOUDINARY_URL")


def test_a_cloud_name_that_is_none_stops_serve_in_one_line(tmp_path: Path) -> None:
    """`serve` came up with it, and every redirect named a malformed URL."""
    env = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "CLOUDINARY_URL": "cloudinary://1234:secret@my%zzcloud",
    }
    result = _gateway(env, "serve", "--port", "0", timeout=30)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        "image-gateway: CLOUDINARY_URL: 'my%zzcloud' is not a cloud name"
        " (letters, digits, - and _)"
    )
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("argv", "environ", "says"),
    [
        # Read until memory ends, and no bound on what an upload may not be.
        pytest.param(
            ["image", "add", "--issuer", "ISSUER", "--file", "/dev/zero"],
            {"GATEWAY_MAX_UPLOAD_BYTES": "1000"},
            "larger than GATEWAY_MAX_UPLOAD_BYTES",
            id="a-file-past-the-upload-bound",
        ),
        # Forked until the machine stopped.
        pytest.param(
            ["serve", "--workers", "99999999999999999999"],
            {},
            "--workers (GATEWAY_WORKERS) is 1 to",
            id="workers",
        ),
        # RecursionError
        pytest.param(
            [
                "token",
                "mint",
                "--issuer",
                "ISSUER",
                "--image",
                "x",
                "--transformations",
                "[" * 30000 + "]" * 30000,
            ],
            {},
            "nested too deeply",
            id="deep-transformations",
        ),
    ],
)
def test_cli_mistakes_are_one_line_and_exit_2(
    tmp_path: Path, argv: list[str], environ: dict[str, str], says: str
) -> None:
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path), **environ}
    env.pop("CLOUDINARY_URL", None)
    env["GATEWAY_PORT"] = str(_free_port())
    issuer = json.loads(
        subprocess.run(
            [sys.executable, "-m", "gateway", "issuer", "add"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["id"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            *(issuer if a == "ISSUER" else a for a in argv),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert says in line


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("GATEWAY_PORT", "0", "GATEWAY_PORT must be a TCP port from 1 to 65535, "
         "not '0' (`serve --port 0` picks a free one)"),
        ("GATEWAY_PORT", "65536", "GATEWAY_PORT must be a TCP port from 1 to 65535, "
         "not '65536' (`serve --port 0` picks a free one)"),
        *(
            ("GATEWAY_RENDER_TIMEOUT", seconds,
             "GATEWAY_RENDER_TIMEOUT must be more than 0 and less than 86400 seconds")
            for seconds in ("0", "100000", "nan")
        ),
        ("GATEWAY_DRAIN_DELAY", "86400",
         "GATEWAY_DRAIN_DELAY must be from 0 to less than 86400 seconds"),
        # An LRU of 10^20 entries was an OverflowError traceback, exit 1.
        ("GATEWAY_TOKEN_CACHE_SIZE", "1" + "0" * 20,
         "GATEWAY_TOKEN_CACHE_SIZE must be from 1 to 10000000"),
        ("GATEWAY_TOKEN_MAX_BYTES", "100000000",
         "GATEWAY_TOKEN_MAX_BYTES must be from 1 to 65536"),
        ("GATEWAY_RENDER_CACHE_BYTES", "1" + "0" * 20,
         "GATEWAY_RENDER_CACHE_BYTES must be from 1 to 9007199254740992"),
        # 0 said "from 1 to 9007199254740992", 1000 "is 1 to 256".
        *(
            ("GATEWAY_WORKERS", workers, "GATEWAY_WORKERS must be from 1 to 256")
            for workers in ("0", "1000")
        ),
        # 0 said "from 1 to 9007199254740992", 101 "between 1 and 100".
        *(
            ("GATEWAY_JPEG_QUALITY", quality, "GATEWAY_JPEG_QUALITY must be from 1 to 100")
            for quality in ("0", "101")
        ),
        # 60 could sign a URL already expired (rounded down to the minute).
        ("GATEWAY_CDN_URL_MAX_AGE", "119",
         "GATEWAY_CDN_URL_MAX_AGE must be from 120 to 9007199254740992"),
        ("GATEWAY_PUBLIC_URL", "http://[::1",
         "GATEWAY_PUBLIC_URL must be an absolute http(s) URL"),
        ("GATEWAY_PUBLIC_URL", "http://x:99999",
         "GATEWAY_PUBLIC_URL must be an absolute http(s) URL"),
        ("GATEWAY_PUBLIC_URL", "https://img.example/base/?q=1",
         "GATEWAY_PUBLIC_URL must not have a query or fragment"),
        ("GATEWAY_PUBLIC_URL", "https://img.example/base#top",
         "GATEWAY_PUBLIC_URL must not have a query or fragment"),
        ("GATEWAY_PUBLIC_URL", "https://u:p@img.example",
         "GATEWAY_PUBLIC_URL must not carry a user name or password"),
        ("GATEWAY_CORS_ORIGINS", "http://[::1",
         "GATEWAY_CORS_ORIGINS: 'http://[::1' is not an origin (scheme://host[:port])"),
    ],
)  # fmt: skip
def test_a_variable_out_of_range_says_what_is_accepted(
    tmp_path: Path, variable: str, value: str, says: str
) -> None:
    """One range per message: a timeout said "between 0 and 86400", then, set
    to 0, "must be more than 0"."""
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path), variable: value}
    result = _gateway(env, "issuer", "list", timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"image-gateway: {says}"


@pytest.mark.parametrize(
    ("argv", "says", "helped_by"),
    [
        ([], "the following arguments are required: {serve,db,migrate,issuer,image,token}", ""),
        (["issuer"], "the following arguments are required: {add,list,signing-key,key}", " issuer"),
        (["issuer", "key"], "the following arguments are required: {create,list,revoke}", " issuer key"),
        (["serve", "--port", "65536"], "argument --port: must be from 0 to 65535", " serve"),
        (["serve", "--port", "-1"], "argument --port: must be from 0 to 65535", " serve"),
        (["serve", "--workers", "two"], "argument --workers: invalid int value: 'two'", " serve"),
        (["issuer", "list", "--nope"], "unrecognized arguments: --nope", ""),
    ],
)  # fmt: skip
def test_argument_mistakes_are_one_line_naming_what_is_expected(
    capsys: pytest.CaptureFixture[str], argv: list[str], says: str, helped_by: str
) -> None:
    """Not argparse's internal names ("required: action"), and one line as any
    start-up mistake: argparse's usage block is the named `--help`'s."""
    with pytest.raises(SystemExit) as exited:
        main(argv, {})
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        f"image-gateway: {says} (see `image-gateway{helped_by} --help`)\n"
    )


@pytest.mark.parametrize("command", [("issuer", "list"), ("db", "upgrade")])
def test_a_data_dir_that_is_a_file_is_one_line_for_every_command(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """`serve` said so in one line; the other commands raised FileExistsError."""
    afile = tmp_path / "afile"
    afile.write_text("")
    env = {**os.environ, "GATEWAY_DATA_DIR": str(afile)}
    env.pop("GATEWAY_DATABASE_URL", None)
    result = _gateway(env, *command, timeout=30)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line == f"image-gateway: GATEWAY_DATA_DIR {afile}: not a directory"


@pytest.mark.parametrize(
    "argv",
    [
        ["issuer", "add", "--max-lifetime", "99999999999999999999999"],
        ["issuer", "add", "--max-lifetime", "0"],
        ["image", "add", "--issuer", "x", "--public-id", "p", "--version", "99999999999999999999999"],
    ],
)  # fmt: skip
def test_numbers_past_what_the_catalog_holds_are_refused_by_the_parser(
    tmp_path: Path, argv: list[str]
) -> None:
    """They reached SQLite: `OverflowError`, a traceback."""
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path)}
    result = _gateway(env, *argv, timeout=30)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "must be from" in result.stderr


def test_guest_uploads_for_an_issuer_the_catalog_lacks_stop_start_up(
    tmp_path: Path,
) -> None:
    """Every guest upload was a 500 (no issuer to own it)."""
    env = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_PORT": str(_free_port()),
        "GATEWAY_GUEST_UPLOADS": "true",
        "GATEWAY_GUEST_ISSUER": "6b6fdb7b-65cb-4acf-97b9-d25eff795348",
    }
    env.pop("CLOUDINARY_URL", None)
    result = _gateway(env, "serve", timeout=60)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "GATEWAY_GUEST_ISSUER 6b6fdb7b-65cb-4acf-97b9-d25eff795348" in line
    assert "listening" not in result.stdout


def test_a_misspelt_variable_is_named_not_ignored_in_silence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo in a variable's name (`GATEWAY_PROT`) would otherwise leave its
    default in force without a word; the command still runs."""
    env = {"GATEWAY_DATA_DIR": str(tmp_path), "HOME": "/"}
    assert main(["issuer", "list"], env) == 0  # the catalog made
    capsys.readouterr()
    assert main(["issuer", "list"], {**env, "GATEWAY_PROT": "9000"}) == 0
    assert capsys.readouterr().err.splitlines() == [
        "image-gateway: GATEWAY_PROT is not a setting; ignored (did you mean GATEWAY_PORT?)"
    ]
