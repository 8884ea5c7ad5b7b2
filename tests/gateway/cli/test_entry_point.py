"""The `image-gateway` command as a person runs it: a process of its own, its output and exit code."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import pty
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from gateway.cli.serve import quiet_chatty_loggers
from tests.helpers import announced
from tests.images import RED, solid

ROOT: Final = Path(__file__).resolve().parents[3]
README: Final = (ROOT / "README.md").read_text()
UNKNOWN: Final = "11111111-1111-4111-8111-111111111111"
UUID: Final = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)


def cli(data_dir: Path, *argv: str, **environ: str) -> subprocess.CompletedProcess[str]:
    """`python -m gateway ARGV` (the same command as `image-gateway`)."""
    env = {**os.environ, "GATEWAY_DATA_DIR": str(data_dir), **environ}
    env.pop("CLOUDINARY_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "gateway", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok(data_dir: Path, *argv: str) -> dict[str, object]:
    result = cli(data_dir, *argv)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert isinstance(doc, dict)
    return doc


def refused(data_dir: Path, *argv: str) -> str:
    """Exit 2 and one line on stderr, no traceback; that line."""
    result = cli(data_dir, *argv)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("image-gateway: ")
    return line


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A data dir with an issuer and one of its images: (dir, issuer, image)."""
    data = tmp_path_factory.mktemp("shop")
    issuer = str(ok(data, "issuer", "add", "--name", "shop")["id"])
    image = str(
        ok(data, "image", "add", "--issuer", issuer, "--public-id", "shop/shoe")["id"]
    )
    return data, issuer, image


def test_version_is_printed(tmp_path: Path) -> None:
    result = cli(tmp_path, "--version")
    assert result.returncode == 0
    assert re.fullmatch(r"image-gateway \d+\.\d+\.\d+\S*\n", result.stdout)


def test_the_installed_command_is_the_same(tmp_path: Path) -> None:
    command = Path(sys.executable).parent / "image-gateway"
    if not command.exists():  # pragma: no cover - always there in the venv
        pytest.fail(f"{command} is missing: pip install -e .")
    result = subprocess.run(
        [str(command), "--version"], capture_output=True, text=True, check=False
    )
    assert result.stdout == cli(tmp_path, "--version").stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--issuer", UNKNOWN, "--image", "{image}"], f"no issuer {UNKNOWN}", id="unknown-issuer"),
        pytest.param(["--issuer", "{issuer}", "--image", UNKNOWN], f"has no image {UNKNOWN}", id="unknown-image"),
        pytest.param(["--issuer", "{issuer}", "--image", "not-an-id"], "has no image not-an-id", id="not-an-image-id"),
        pytest.param(
            ["--issuer", "{issuer}", "--image", "{image}", "--transformations",
             f'[{{"overlay": "{UNKNOWN}", "x": 10}}]'],
            f"/transformations/0/overlay: issuer {'{issuer}'} has no image {UNKNOWN}",
            id="unknown-overlay",
        ),
        pytest.param(["--issuer", "{issuer}", "--image", "{image}", "--ttl", "0"], "--ttl must be a positive", id="ttl-zero"),
        pytest.param(["--issuer", "{issuer}", "--image", "{image}", "--ttl", "-60"], "--ttl must be a positive", id="ttl-negative"),
        pytest.param(["--issuer", "{issuer}", "--image", "{image}", "--kid", "nope"], "no active key nope", id="unknown-kid"),
    ],
)  # fmt: skip
def test_token_mint_refuses_what_would_never_work(
    shop: tuple[Path, str, str], argv: list[str], message: str
) -> None:
    data, issuer, image = shop
    filled = [a.replace("{issuer}", issuer).replace("{image}", image) for a in argv]
    line = refused(data, "token", "mint", *filled)
    assert message.replace("{issuer}", issuer) in line


def test_token_mint_for_the_issuers_own_image_works(
    shop: tuple[Path, str, str],
) -> None:
    data, issuer, image = shop
    minted = ok(
        data, "token", "mint", "--issuer", issuer, "--image", image, "--ttl", "60"
    )
    assert str(minted["url"]).startswith(f"http://127.0.0.1:8080/images/{image}?token=")


def test_image_list_of_an_unknown_issuer_is_an_error(
    shop: tuple[Path, str, str],
) -> None:
    data, _, _ = shop
    assert f"no issuer {UNKNOWN}" in refused(data, "image", "list", "--issuer", UNKNOWN)


def test_image_add_for_an_unknown_issuer_names_no_invented_id(
    shop: tuple[Path, str, str], tmp_path: Path
) -> None:
    data, _, _ = shop
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff" + b"\x00" * 64)
    line = refused(data, "image", "add", "--issuer", UNKNOWN, "--file", str(photo))
    assert f"no issuer {UNKNOWN}" in line
    assert set(UUID.findall(line)) == {UNKNOWN}


def _commands() -> list[list[str]]:
    """Every command of the README's command-line section, as words."""
    section = README.split("## Command line", 1)[1].split("```sh", 1)[1]
    block = section.split("```", 1)[0]
    commands = []
    for line in block.strip().splitlines():
        words = line.split("#", 1)[0].split()
        assert words[0] == "image-gateway", line
        verbs = []
        for word in words[1:]:
            if not re.fullmatch(r"[a-z][a-z-]*", word):
                break
            verbs.append(word)
        commands.append(verbs)
    return commands


def _options_without_help(help_text: str) -> list[str]:
    """Options in argparse's listing with nothing said about them."""
    listing = help_text.split("options:", 1)[1].split("\n\n", 1)[0]
    lines = listing.splitlines()
    bare = []
    for line, following in zip(lines, [*lines[1:], ""], strict=True):
        match = re.match(
            r"  (-[-\w]+(?:, --[-\w]+)?)((?: [A-Z_{},]+)*)(\s{2,}\S.*)?$", line
        )
        if match is None:
            continue
        if match.group(3) is None and not following.startswith(" " * 8):
            bare.append(match.group(1))
    return bare


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_every_option_has_help(tmp_path: Path, command: list[str]) -> None:
    result = cli(tmp_path, *command, "--help")
    assert result.returncode == 0, result.stderr
    assert "options:" in result.stdout
    assert _options_without_help(result.stdout) == []


def test_the_help_checker_sees_a_bare_option() -> None:
    listing = "options:\n  -h, --help  show this\n  --name NAME\n  --kid KID   key id\n"
    assert _options_without_help(listing) == ["--name"]


def _transformation_keys() -> list[str]:
    """The keys of the README's table of a step's keys."""
    table = README.split("Each step of `transformations` takes:", 1)[1]
    rows = re.findall(r"^\| (`[^|]+`) \|", table.split("\n\n", 2)[1], re.MULTILINE)
    keys = [k for row in rows for k in re.findall(r"`(\w+)`", row)]
    assert len(keys) >= 10
    return keys


def test_token_mint_help_lists_the_transformation_keys(tmp_path: Path) -> None:
    result = cli(tmp_path, "token", "mint", "--help")
    assert result.returncode == 0
    listed = result.stdout.split("Each step of --transformations", 1)[1]
    for key in _transformation_keys():
        assert re.search(rf"^  (\w+, )?{key}\b", listed, re.MULTILINE), key


class _Server:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.printed: list[str] = []

    def read_until(self, prefix: str) -> str:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.printed.append(line.rstrip("\n"))
            if (text := announced(line)).startswith(prefix):
                return text
        raise AssertionError(f"never printed {prefix!r}: {self.printed}")


Start = Callable[..., _Server]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    started: list[subprocess.Popen[str]] = []

    def run(*argv: str, **environ: str) -> _Server:
        env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_WORKERS": "1"}
        env.pop("CLOUDINARY_URL", None)
        env.update(environ)
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append(process)
        return _Server(process)

    yield run
    for process in started:
        process.terminate()
        process.communicate(timeout=15)


def _get(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback
        return answer.headers["Content-Type"], answer.read()


def test_port_zero_prints_the_port_it_got(start: Start) -> None:
    server = start("--port", "0", GATEWAY_PORT="8080")
    line = server.read_until("image-gateway listening on ")
    url = line.removeprefix("image-gateway listening on ")
    port = int(url.rsplit(":", 1)[1])
    assert port not in (0, 8080)
    index = server.read_until("links to everything: ")
    assert index == f"links to everything: {url}"
    content_type, body = _get(url + "/")  # bound before it was printed
    assert content_type == "application/json"
    links = json.loads(body)["links"]
    assert links["openapi"] == f"{url}/openapi.json"


def test_an_ipv6_host_is_bound_and_printed_in_brackets(start: Start) -> None:
    """GATEWAY_HOST=::1 (or ::) stopped start-up: "cannot listen on ::1:0:
    Address family for hostname not supported"."""
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    server = start("--port", "0", GATEWAY_HOST="::1")
    line = server.read_until("image-gateway listening on ")
    url = line.removeprefix("image-gateway listening on ")
    assert url.startswith("http://[::1]:")
    assert server.read_until("links to everything: ") == f"links to everything: {url}"
    content_type, body = _get(url + "/livez")
    assert (content_type, json.loads(body)) == ("application/json", {"status": "live"})


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_listen_backlog_is_the_one_asked_for(start: Start, workers: str) -> None:
    """asyncio listened again with its default backlog of 100 (`ss` showed
    100 where `serve` asked for 1024)."""
    if (ss := shutil.which("ss")) is None:
        pytest.skip("no `ss` here (apt-get install iproute2) to read the backlog")
    server = start("--port", "0", GATEWAY_WORKERS=workers)
    url = server.read_until("image-gateway listening on ").rpartition(" ")[2]
    _get(url + "/livez")  # a worker serves: asyncio has listened again
    port = url.rpartition(":")[2]
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    # For a listening socket, ss's Send-Q is its backlog.
    listed = subprocess.run(
        [ss, "-ltnH", f"sport = :{port}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert listed[0] == "LISTEN"
    assert int(listed[2]) == min(1024, somaxconn)


def test_printed_and_signed_urls_follow_host_and_port(start: Start) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = start(
        "--demo", "--host", "127.0.0.1", "--port", str(port),
        GATEWAY_HOST="localhost", GATEWAY_PORT="8080",
    )  # fmt: skip
    assert server.read_until("image-gateway listening on ").endswith(
        f" http://127.0.0.1:{port}"
    )
    demo = server.read_until("open the demo page: ")
    assert demo == f"open the demo page: http://127.0.0.1:{port}/demo"
    _, page = _get(f"http://127.0.0.1:{port}/demo")
    thumbnails = re.findall(r'<img src="([^"]+)"', page.decode())
    assert len(thumbnails) == 3
    for url in thumbnails:
        assert url.startswith(f"http://127.0.0.1:{port}/images/")
        content_type, _ = _get(url.replace("&amp;", "&"))
        assert content_type == "image/jpeg"


def test_a_public_url_is_what_is_printed_for_pages(start: Start) -> None:
    server = start(
        "--demo", "--port", "0", GATEWAY_PUBLIC_URL="https://img.example.com"
    )
    server.read_until("image-gateway listening on http://127.0.0.1:")
    assert (
        server.read_until("open the demo page: ")
        == "open the demo page: https://img.example.com/demo"
    )


# Access tokens and API keys with roles (size-based access control)


def test_stdout_is_json_lines_start_up_included_whatever_the_level(
    start: Start,
) -> None:
    """Not at a terminal (a container's log): every line is one JSON object, so
    a strict log shipper parses the start-up lines too; the URLs have fields."""
    server = start("--port", "0", GATEWAY_LOG_LEVEL="ERROR")
    server.read_until("links to everything: ")
    listening, links = (json.loads(line) for line in server.printed)
    url = listening["url"]
    assert listening["message"] == f"image-gateway listening on {url}"
    assert links["message"] == f"links to everything: {url}"
    assert links["url"] == url
    assert listening["level"] == links["level"] == "INFO"
    _get(url + "/openapi.json")
    server.process.terminate()
    rest, _ = server.process.communicate(timeout=15)
    lines = rest.splitlines()
    assert any(json.loads(line).get("route") == "openapi" for line in lines)
    assert all(isinstance(json.loads(line), dict) for line in lines)


def test_at_a_terminal_the_start_up_lines_are_plain_text(tmp_path: Path) -> None:
    """A person who ran `serve` reads the URL to open, not a JSON record."""
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_WORKERS": "1"}
    env.pop("CLOUDINARY_URL", None)
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--port", "0", "--demo"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    printed = b""
    try:
        with contextlib.suppress(OSError):  # EIO: the terminal's other end is gone
            while b"open the demo page: " not in printed or not printed.endswith(b"\n"):
                if not select.select([controller], [], [], 60)[0]:
                    break
                printed += os.read(controller, 4096)
    finally:
        process.terminate()
        process.wait(timeout=15)
        os.close(controller)
    first, second = printed.decode().splitlines()[:2]
    assert re.fullmatch(r"image-gateway listening on http://127\.0\.0\.1:\d+", first)
    port = first.rsplit(":", 1)[1]
    assert second == f"open the demo page: http://127.0.0.1:{port}/demo"


def test_token_access_mints_a_token_the_gateway_accepts(
    shop: tuple[Path, str, str],
) -> None:
    data, issuer, _ = shop
    doc = ok(
        data,
        "token", "access", "--issuer", issuer, "--sub", "alice",
        "--scope", "images:read,images:write", "--roles", "staff,editor", "--ttl", "600",
    )  # fmt: skip
    assert doc["sub"] == "alice"
    assert doc["scope"] == "images:read images:write"
    assert doc["roles"] == ["editor", "staff"]
    listed = cli(data, "issuer", "list")
    (known,) = [i for i in json.loads(listed.stdout) if i["id"] == issuer]
    assert known["kids"]  # the token names one of these keys
    token = str(doc["token"])
    header = json.loads(_b64(token.split(".")[0]))
    assert header["typ"] == "at+jwt"
    assert header["kid"] in known["kids"]


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--ttl", "0"], "--ttl"),
        (["--ttl", "86401"], "at most 86400"),
        (["--scope", "images:admin"], "--scope"),
        (["--roles", "bad role"], "--roles"),
    ],
)
def test_token_access_refuses_bad_options(
    shop: tuple[Path, str, str], argv: list[str], words: str
) -> None:
    data, issuer, _ = shop
    line = refused(data, "token", "access", "--issuer", issuer, "--sub", "u", *argv)
    assert words in line


@pytest.mark.parametrize("command", ["access", "mint"])
def test_a_token_is_signed_with_the_key_kid_names(tmp_path: Path, command: str) -> None:
    """During a rotation, with the newest key or an older one still active."""
    issuer = str(ok(tmp_path, "issuer", "add", "--kid", "old")["id"])
    image = str(
        ok(tmp_path, "image", "add", "--issuer", issuer, "--public-id", "a")["id"]
    )
    ok(tmp_path, "issuer", "signing-key", "add", "--issuer", issuer, "--kid", "new")
    needs = ["--sub", "u"] if command == "access" else ["--image", image]
    for kid, expected in ((None, "new"), ("old", "old"), ("new", "new")):
        chosen = [] if kid is None else ["--kid", kid]
        doc = ok(tmp_path, "token", command, "--issuer", issuer, *needs, *chosen)
        header = json.loads(_b64(str(doc["token"]).split(".")[0]))
        assert header["kid"] == expected, (kid, header)
    ok(tmp_path, "issuer", "signing-key", "revoke", "--issuer", issuer, "--kid", "old")
    line = refused(
        tmp_path, "token", command, "--issuer", issuer, *needs, "--kid", "old"
    )
    assert line == f"image-gateway: issuer {issuer} has no active key old"


def test_token_access_for_an_unknown_issuer_is_refused(
    shop: tuple[Path, str, str],
) -> None:
    data, _, _ = shop
    line = refused(data, "token", "access", "--issuer", UNKNOWN, "--sub", "u")
    assert UNKNOWN in line


def test_key_create_with_roles_lists_them(shop: tuple[Path, str, str]) -> None:
    data, issuer, _ = shop
    created = ok(
        data, "issuer", "key", "create", "--issuer", issuer, "--roles", "staff"
    )
    assert created["roles"] == ["staff"]
    listed = json.loads(cli(data, "issuer", "key", "list", "--issuer", issuer).stdout)
    prefix = str(created["api_key"]).split("_")[1]
    (mine,) = [k for k in listed if k["prefix"] == f"sk_{prefix}"]
    assert mine["roles"] == ["staff"]
    assert "--roles" in refused(
        data, "issuer", "key", "create", "--issuer", issuer, "--roles", "a b"
    )


def test_key_list_for_an_unknown_issuer_is_refused_not_empty(
    shop: tuple[Path, str, str],
) -> None:
    line = refused(shop[0], "issuer", "key", "list", "--issuer", UNKNOWN)
    assert line == f"image-gateway: no issuer {UNKNOWN}"


def test_a_key_revoked_by_the_whole_key_is_echoed_by_its_prefix_only(
    shop: tuple[Path, str, str],
) -> None:
    data, issuer, _ = shop
    key = str(ok(data, "issuer", "key", "create", "--issuer", issuer)["api_key"])
    result = cli(data, "issuer", "key", "revoke", "--issuer", issuer, "--prefix", key)
    assert result.returncode == 0, result.stderr
    assert key.split("_", 2)[2] not in result.stdout + result.stderr
    revoked = json.loads(result.stdout)
    assert revoked == {
        "issuer": issuer,
        "prefix": "_".join(key.split("_")[:2]),
        "revoked": True,
    }
    listed = json.loads(cli(data, "issuer", "key", "list", "--issuer", issuer).stdout)
    (mine,) = [k for k in listed if k["prefix"] == revoked["prefix"]]
    assert mine["revokedAt"] is not None
    again = refused(
        data, "issuer", "key", "revoke", "--issuer", issuer, "--prefix", key
    )
    assert again == (
        f"image-gateway: issuer {issuer} has no active key {revoked['prefix']}"
    )


@pytest.mark.parametrize(
    ("ttl", "words"),
    [
        (None, "requires exp: give --ttl"),
        ("61", "allows tokens of at most 60 s"),
    ],
)
def test_token_mint_refuses_a_token_its_issuers_policy_would_refuse(
    tmp_path: Path, ttl: str | None, words: str
) -> None:
    issuer = str(
        ok(tmp_path, "issuer", "add", "--require-exp", "--max-lifetime", "60")["id"]
    )
    image = str(
        ok(tmp_path, "image", "add", "--issuer", issuer, "--public-id", "a")["id"]
    )
    mint = ("token", "mint", "--issuer", issuer, "--image", image)
    assert words in refused(tmp_path, *mint, *(["--ttl", ttl] if ttl else []))
    assert ok(tmp_path, *mint, "--ttl", "60")["token"]


@pytest.mark.parametrize(
    "argv",
    [
        ["issuer", "add", "--secret", ""],
        ["issuer", "add", "--kid", ""],
        ["issuer", "signing-key", "add", "--issuer", UNKNOWN, "--secret", ""],
        ["token", "mint", "--issuer", UNKNOWN, "--image", UNKNOWN, "--kid", ""],
        ["token", "access", "--issuer", UNKNOWN, "--sub", "u", "--kid", ""],
    ],
    ids=["secret", "kid", "signing-key", "mint-kid", "access-kid"],
)
def test_an_empty_secret_or_kid_is_refused_not_replaced(
    tmp_path: Path, argv: list[str]
) -> None:
    result = cli(tmp_path, *argv)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "must not be empty" in result.stderr


def _upload(url: str, key: str, body: bytes) -> Any:
    """POST a multipart `body` (boundary `cut`) to /v1/images with an API key."""
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{url}/v1/images",
        data=body,
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "multipart/form-data; boundary=cut",
        },
    )
    return urllib.request.urlopen(request, timeout=10)  # noqa: S310 - loopback


def test_a_malformed_part_header_is_a_422_and_never_a_printed_warning(
    start: Start, tmp_path: Path
) -> None:
    """aiohttp warns of a malformed Content-Disposition: Python would print it
    raw (the client's bytes, not JSON) and remember it for good, once per
    distinct header."""
    key = str(ok(tmp_path, "issuer", "add", "--name", "shop")["api_key"])
    server = start("--port", "0")
    url = server.read_until("image-gateway listening on ").rsplit(" ", 1)[1]
    for n in range(3):
        body = (
            f'--cut\r\nContent-Disposition: form-data; name="image";; x{n}\r\n\r\n'
            "data\r\n--cut--\r\n"
        ).encode()
        with pytest.raises(urllib.error.HTTPError) as refused_upload:
            _upload(url, key, body)
        with refused_upload.value as answer:
            assert answer.code == 422
    server.process.terminate()
    printed, _ = server.process.communicate(timeout=15)
    assert "BadContentDisposition" not in printed
    assert "Warning" not in printed


def test_an_upload_with_corrupt_exif_is_accepted_and_never_a_printed_warning(
    start: Start, tmp_path: Path
) -> None:
    """Pillow warns of EXIF it cannot read (a count past the file's end):
    printed raw, not JSON, for each upload of one, as aiohttp's warnings were."""
    exif = b"Exif\0\0MM\0*" + struct.pack(">IHHHII", 8, 1, 0x112, 3, 2**32 - 1, 16)
    jpeg = solid((8, 8), RED, "JPEG")
    data = jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + jpeg[2:]
    key = str(ok(tmp_path, "issuer", "add", "--name", "shop")["api_key"])
    server = start("--port", "0")
    url = server.read_until("image-gateway listening on ").rsplit(" ", 1)[1]
    body = (
        b'--cut\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"'
        b"\r\n\r\n" + data + b"\r\n--cut--\r\n"
    )
    with _upload(url, key, body) as answer:
        assert answer.status == 201
    server.process.terminate()
    printed, _ = server.process.communicate(timeout=15)
    assert "Warning" not in printed


@pytest.mark.parametrize(
    ("level", "expected"),
    [(logging.DEBUG, logging.INFO), (logging.ERROR, logging.ERROR)],
)
def test_botocore_never_logs_at_debug(level: int, expected: int) -> None:
    """At DEBUG, botocore logs each signed S3 request's headers (the access
    key id, SigV4 signatures): it stays at INFO, or the operator's level."""
    root = logging.getLogger()
    before = root.level, logging.getLogger("botocore").level
    root.setLevel(level)
    try:
        quiet_chatty_loggers()
        for name in ("botocore", "aiobotocore"):
            assert logging.getLogger(name).getEffectiveLevel() == expected
    finally:
        root.setLevel(before[0])
        logging.getLogger("botocore").setLevel(before[1])
        logging.getLogger("aiobotocore").setLevel(logging.NOTSET)
