"""The README works when pasted: its snippets, taken from the README itself, run.

Each shell snippet carries a marker on the line before its fence,
`<!-- snippet: KIND -->` (invisible once rendered):

- `server`: a command starting the gateway, which the others talk to: the
  first command (whose first parts install the project, as this test run
  already did), and the local CDN's; the `run` snippets run against each;
- `run`: pasted, in order, into one shell in another terminal, as a reader
  would: they must all succeed;
- `network`: needs the internet (skipped here, where there is none);
- `tests`, `synopsis`: the test command (this very run) and the command
  reference, which is not meant to be pasted.

They run in a scratch directory standing for a fresh clone (`.venv` and
`scripts/` linked in, its own `./var`). The one change to the pasted text is
the port: the gateway gets a free one instead of 8080, which may be taken,
and `GATEWAY_PORT` names it in the reader's terminal, as the README says.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
from PIL import Image

from gateway.cli import main
from tests.helpers import announced

ROOT: Final = Path(__file__).resolve().parents[1]
README: Final = (ROOT / "README.md").read_text()
# The reader's shell; the snippets are bash (`$(…)`, `set -o pipefail`).
BASH: Final = shutil.which("bash") or "/bin/bash"
KINDS: Final = frozenset({"server", "run", "network", "tests", "synopsis"})
_FENCE: Final = re.compile(
    r"^(?:<!-- snippet: (?P<kind>[a-z]+) -->\n)?```sh\n(?P<code>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)


def snippets() -> list[tuple[str | None, str]]:
    return [(m["kind"], m["code"]) for m in _FENCE.finditer(README)]


def of_kind(kind: str) -> list[str]:
    return [code for k, code in snippets() if k == kind]


def test_every_shell_snippet_says_what_it_is() -> None:
    found = snippets()
    assert len(found) >= 5
    assert [kind for kind, _ in found if kind not in KINDS] == []


def test_it_opens_with_what_and_for_whom_then_the_two_commands() -> None:
    intro = README.split("\n\n")
    assert intro[0] == "# image-gateway"
    assert "for teams" in intro[1]
    first, second = snippets()[:2]
    assert first[0] == "server"
    assert first[1].strip().endswith("image-gateway serve --demo")
    assert second[0] == "tests"
    assert second[1].strip().endswith("scripts/check")
    # CI runs that very command.
    assert second[1].strip() in (ROOT / ".ci" / "run").read_text()


def test_it_says_nothing_only_insiders_understand() -> None:
    insider = re.compile(r"\bseeds? ?0\d\d\b|\bseed's\b|\bseed\d+\b|\bR\d{1,2}\b")
    assert insider.findall(README) == []


def test_urls_with_brackets_are_not_curl_patterns() -> None:
    for _, code in snippets():
        for line in code.splitlines():
            if line.lstrip().startswith("curl") and re.search(r"\[|\]", line):
                assert " -g " in line, line


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A directory standing for a fresh clone with the project installed."""
    (tmp_path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    (tmp_path / "scripts").symlink_to(ROOT / "scripts", target_is_directory=True)
    return tmp_path


def _environ(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.pop("CLOUDINARY_URL", None)
    # As in the README's own terminal: the port is the only difference.
    env["GATEWAY_PORT"] = str(port)
    return env


_INSTALL: Final = ["python3 -m venv .venv", ".venv/bin/pip install -q -e ."]


def _servers() -> list[tuple[str, dict[str, str]]]:
    """The README's ways to start the gateway, each without the install this
    test run already did, and the variables it exports (which the README has
    the reader export in the other terminal too)."""
    servers = []
    for command in of_kind("server"):
        *exports, last = command.strip().splitlines()
        *install, serve = last.split(" && ")
        assert install in ([], _INSTALL)
        variables = dict(line.removeprefix("export ").split("=", 1) for line in exports)
        assert all(line.startswith("export ") for line in exports)
        for name in variables:
            assert f"Run `export {name}=" in README
        servers.append((serve, variables))
    return servers


def test_the_first_command_installs_then_serves() -> None:
    first = of_kind("server")[0].strip()
    assert first.startswith(" && ".join(_INSTALL) + " && ")


@pytest.fixture(params=_servers(), ids=lambda server: server[0])
def gateway(
    clone: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[int, dict[str, str]]]:
    """A README command starting the gateway, run as it says, on a free port:
    the port, and what the reader exports in the other terminal."""
    serve, exported = request.param
    port = _free_port()
    server = subprocess.Popen(
        [BASH, "-c", serve],
        cwd=clone,
        env={**_environ(port), **exported, "GATEWAY_WORKERS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the shell and the gateway it starts: one group
    )
    try:
        assert server.stdout is not None
        printed = []
        for line in server.stdout:
            printed.append(line)
            if announced(line).startswith("open the demo page: "):
                assert (
                    announced(line)
                    == f"open the demo page: http://127.0.0.1:{port}/demo"
                )
                break
        else:
            raise AssertionError(f"the gateway did not start: {printed}")
        yield port, exported
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.communicate(timeout=15)


def test_the_snippets_run_as_pasted(
    clone: Path, gateway: tuple[int, dict[str, str]]
) -> None:
    port, exported = gateway
    # As pasted: every URL follows GATEWAY_PORT, exported in the reader's
    # terminal as the README says when the gateway is not on 8080.
    pasted = "\n".join(of_kind("run"))
    assert "127.0.0.1:8080" not in pasted
    result = subprocess.run(
        [BASH, "-c", "set -euo pipefail\n" + pasted],
        cwd=clone,
        env={**_environ(port), **exported},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with Image.open(clone / "cropped.jpg") as cropped:
        assert (cropped.format, cropped.size) == ("JPEG", (400, 300))
    assert (clone / "var" / "catalog.sqlite3").exists()
    # The mint script's token, the upload's image, the (empty) filtered list.
    assert '"token"' in result.stdout
    assert '"type": "images"' in result.stdout or '"type":"images"' in result.stdout
    assert result.stdout.rstrip().endswith("}")


def test_a_network_snippet_is_the_origin_ingest_only() -> None:
    (code,) = of_kind("network")
    assert '"origin": "https://' in code


def test_the_command_reference_names_every_option_of_each_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each line of the `## Command line` synopsis names exactly the options
    its command takes (its `--help` usage): none missing, none made up."""
    synopsis = _FENCE.search(README.split("## Command line", 1)[1])
    assert synopsis is not None
    assert synopsis["kind"] == "synopsis"
    lines = [
        line.split("#", 1)[0]
        for line in synopsis["code"].splitlines()
        if line.startswith("image-gateway ")
    ]
    assert len(lines) >= 10
    option = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
    for line in lines:
        words = line.split()[1:]
        command = list(itertools.takewhile(lambda w: w[0] not in "-[", words))
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        usage = capsys.readouterr().out.split("\n\n", 1)[0]
        documented = set(option.findall(line))
        taken = set(option.findall(usage)) - {"--help"}
        assert documented == taken, (command, documented ^ taken)
