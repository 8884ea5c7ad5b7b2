"""scripts/mint_token.py mints tokens the gateway accepts, with no server or catalog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Final

import jwt
import pytest

from scripts.mint_token import main
from signing import InMemoryKeyStore, Issuer, IssuerKey, verify

ROOT: Final = Path(__file__).resolve().parents[1]
README: Final = (ROOT / "README.md").read_text()
ISSUER = "6b6fdb7b-65cb-4acf-97b9-d25eff795348"
IMAGE = "133398b5-c4e1-4488-bbe1-81afd70546ae"
SECRET = "m" * 40


def test_minted_token_verifies(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--issuer", ISSUER, "--secret", SECRET, "--image", IMAGE, "--ttl", "60",
            "--transformations", '[{"crop": "fit", "width": 800}]']  # fmt: skip
    assert main(argv, {}) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "kid" not in jwt.get_unverified_header(doc["token"])
    keys = InMemoryKeyStore(
        {ISSUER: Issuer(id=ISSUER, name="i", keys=(IssuerKey(kid="k", secret=SECRET),))}
    )
    verified = verify(doc["token"], keys)
    assert verified.transformations == [{"crop": "fit", "width": 800}]
    assert doc["url"] == f"http://127.0.0.1:8080/images/{IMAGE}?token={doc['token']}"


@pytest.mark.parametrize(
    ("environ", "extra", "audience", "base"),
    [
        ({}, [], None, "http://127.0.0.1:8080"),
        # The gateway's own configuration: it would refuse a token without aud.
        ({"GATEWAY_TOKEN_AUDIENCE": "gw", "GATEWAY_PORT": "8092"}, [], "gw",
         "http://127.0.0.1:8092"),
        ({"GATEWAY_TOKEN_AUDIENCE": "gw", "GATEWAY_PUBLIC_URL": "https://img.example"},
         ["--audience", "other"], "other", "https://img.example"),
    ],
)  # fmt: skip
def test_audience_and_url_follow_the_gateways_configuration(
    capsys: pytest.CaptureFixture[str],
    environ: dict[str, str],
    extra: list[str],
    audience: str | None,
    base: str,
) -> None:
    argv = ["--issuer", ISSUER, "--secret", SECRET, "--image", IMAGE, *extra]
    assert main(argv, environ) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (
        jwt.decode(doc["token"], options={"verify_signature": False}).get("aud")
        == audience
    )
    assert doc["url"] == f"{base}/images/{IMAGE}?token={doc['token']}"


def test_a_bad_gateway_variable_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--issuer", ISSUER, "--secret", SECRET]
    assert main(argv, {"GATEWAY_PORT": "x"}) == 2
    assert capsys.readouterr().err.startswith("mint_token: GATEWAY_PORT must be")


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(["--transformations", "[{"], id="not-json"),
        pytest.param(["--transformations", '[{"width": 0}]'], id="invalid-step"),
        pytest.param(["--secret", "short"], id="weak-secret"),
    ],
)
def test_bad_input_exits_2(
    capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    assert main(["--issuer", ISSUER, "--secret", SECRET, *extra], {}) == 2
    assert "mint_token:" in capsys.readouterr().err


def test_inprocess_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """A smoke run: both cases measured against the floor (no timing asserted)."""
    from scripts.bench_inprocess import main as bench

    assert bench(["--requests", "30", "--rounds", "1"]) == 0
    rows = {
        line.split()[0]: line.split()
        for line in capsys.readouterr().out.splitlines()[3:]
    }
    assert set(rows) == {"warm", "cold"}
    for _, floor, gateway, _, ratio in rows.values():
        assert float(floor) > 0
        assert float(gateway) > 0
        assert ratio.endswith("x")


def test_inprocess_benchmark_measures_each_layer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--layers`: each variant answered its 302 (checked by the script, with
    and without its request id) and is reported against the floor."""
    from scripts.bench_inprocess import main as bench

    assert bench(["--requests", "30", "--rounds", "1", "--layers"]) == 0
    out = capsys.readouterr().out
    layers = out.partition("warm, by layer:")[2].splitlines()[1:]
    assert [line[:15].strip() for line in layers[:6]] == [
        "floor",
        "gateway",
        "no log",
        "no middleware",
        "pass-through",
        "neither",
    ]
    assert layers[6].startswith("the access log costs ")


def test_inprocess_benchmark_bounds_any_gateway(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--bound`: each variant answered its 302 (checked by the script) and is
    reported against the floor, with the estimate on the gateway's path."""
    from scripts.bench_inprocess import main as bench

    assert bench(["--requests", "30", "--rounds", "1", "--bound"]) == 0
    rows = capsys.readouterr().out.partition("warm, bound:")[2].splitlines()[1:]
    assert [line[:33].strip() for line in rows[:6]] == [
        "floor",
        "floor, empty middleware",
        "floor, least middleware and log",
        "floor, least wrapper and log",
        "gateway, empty middleware, no log",
        "gateway",
    ]
    assert all(line.endswith("x") for line in rows[:6])
    assert rows[6].startswith("the least middleware and log cost ")


def test_the_mixed_load_runs_and_sees_no_5xx(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A short smoke run of scripts/load.py (the real runs are minutes long)."""
    from scripts.load import main as load

    assert load(["--seconds", "3", "--connections", "8"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out
    assert "cached 200" in out


def _runnable() -> list[str]:
    """The scripts with a command line: those run as `python scripts/NAME.py`."""
    return sorted(
        path.name
        for path in (ROOT / "scripts").glob("*.py")
        if 'if __name__ == "__main__":' in path.read_text()
    )


@pytest.mark.parametrize("name", _runnable())
def test_each_script_runs_as_the_readme_says(name: str, tmp_path: Path) -> None:
    """`.venv/bin/python scripts/NAME.py --help`, from the project directory."""
    assert f"`scripts/{name}`" in README
    result = subprocess.run(
        [sys.executable, f"scripts/{name}", "--help"],
        cwd=ROOT,
        env={**os.environ, "GATEWAY_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {name}")


def test_the_readme_says_how_scripts_run() -> None:
    assert "`.venv/bin/python scripts/NAME.py`" in README


def test_the_iiif_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """A smoke run: every scale factor measured cold, warm and naive (no timing asserted)."""
    from scripts.bench_iiif import FACTORS
    from scripts.bench_iiif import main as bench

    assert bench(["--tiles", "2"]) == 0
    rows = capsys.readouterr().out.splitlines()[2:-1]
    assert [row.split()[0] for row in rows] == [f"1/{f}" for f in FACTORS]
    for row in rows:
        _, cold, naive, ratio, warm, p50, _ = row.split()
        assert float(cold) > 0
        assert float(naive) > 0
        assert ratio.endswith("x")
        assert float(warm) > 0
        assert float(p50) > 0


def _meta(path: Path, codes: dict[str, int | None]) -> None:
    """A results file as mutmut 3 writes one beside each mutated module."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "exit_code_by_key": codes,
        "hash_by_function_name": {},
        "type_check_error_by_key": {},
        "durations_by_key": {},
        "estimated_durations_by_key": {},
    }
    path.write_text(json.dumps(doc))


def test_mutation_score_per_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scripts.mutation_score import main as score

    # Killed: a failing test (1), a timeout (36), mypy (37); then a survivor
    # (0), an untested mutant (33), one not run yet (None) and a skipped one (34).
    _meta(
        tmp_path / "pkg" / "a.py.meta",
        {"a.x_f__mutmut_1": 1, "a.x_f__mutmut_2": 36, "a.x_f__mutmut_3": 37,
         "a.x_f__mutmut_4": 0, "a.x_f__mutmut_5": 33, "a.x_f__mutmut_6": None,
         "a.x_f__mutmut_7": 34},
    )  # fmt: skip
    _meta(tmp_path / "b.py.meta", {"b.x_g__mutmut_1": 1})
    assert score(["--mutants", str(tmp_path), "--min", "50", "--survivors"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["b.py", "1", "0", "0", "0", "0", "100.0%"]
    assert out[2].split() == ["pkg/a.py", "3", "1", "1", "1", "1", "50.0%"]
    assert out[3].split() == ["all", "4", "57.1%"]
    assert out[4:] == [
        "survived  a.x_f__mutmut_4",
        "no tests  a.x_f__mutmut_5",
        "other     a.x_f__mutmut_6",
    ]
    assert score(["--mutants", str(tmp_path), "--min", "51"]) == 1
    assert "below 51 %: pkg/a.py" in capsys.readouterr().err
