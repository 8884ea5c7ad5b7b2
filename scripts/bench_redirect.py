"""Benchmark the 302 path against a floor: a minimal aiohttp app answering the same 302.

Both servers run as one process on the default asyncio loop, on loopback,
pinned to CPU 0 and wrk to CPU 1 (`taskset`, on two cores or more); the
gateway in its default configuration (its JSON access log on, written to
/dev/null), the floor without a log. wrk loads them back to back, round after round (alternating
which goes first), and the verdict is the median of the per-round ratios. The floor's headers and body are captured from the gateway's own
answer, so both send the same bytes. Cases:

  warm   the same token again and again (a page of tiles reloaded)
  cold   a new token (its own jti/iat) per request for the same tiling
  novel  a never-seen transformation per request (reported, no target)

Every token is seed-shaped: HS256 without a `kid`, `iss`, `iat`, a distinct
`jti` and the transformations, so the gateway finds the key from `iss`.

`--together` measures differently, to compare two builds: both servers
loaded at the same time, both on CPU 0 (two wrk on CPU 1), for `--seconds`
per case. The scheduler gives each half the core, so the ratio of their
requests/s is the ratio of their costs per request, and a drift of the
machine's speed hits both at the same instant: steadier than rounds (a few
hundredths between runs here, where rounds spread by a third), but harsher
(the two processes evict each other's caches), so the issue's targets are
judged on the rounds.

Usage: python scripts/bench_redirect.py [--seconds 3] [--rounds 5] [--together]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import median

from aiohttp import web
from yarl import URL

# Run as `python scripts/NAME.py`, only scripts/ is on sys.path: add the project
# root so that the `scripts` package imports.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway import Settings
from gateway.catalog import SqliteCatalog
from gateway.delivery.links import delivery_url
from scripts._bench import Load, free_port, ratio, require_wrk, server, summarise, wrk
from scripts.seed004 import CLOUD_NAME, IMAGE, ISSUER, add_assets, tiling
from signing import IssuerKey, mint

KEY = IssuerKey(kid="bench", secret="b" * 48)
CLOUDINARY_URL = f"cloudinary://1234:bench-api-secret@{CLOUD_NAME}"
TARGETS = {"warm": 0.80, "cold": 0.30}
# Headers aiohttp writes itself on every response: not part of a captured 302.
GENERATED = frozenset({"content-length", "date", "server"})


async def seed(data_dir: Path) -> None:
    """Seed 004's issuer (with the bench key) and its three Cloudinary assets."""
    catalog = await SqliteCatalog.open(Settings(data_dir=data_dir).database)
    try:
        await catalog.add_issuer(issuer_id=ISSUER, secret=KEY.secret, kid=KEY.kid)
        await add_assets(catalog)
    finally:
        await catalog.close()


def path(token: str) -> str:
    """The delivery path of seed 004's image for `token` (as the gateway builds it)."""
    return str(delivery_url(URL("/"), IMAGE, token))


def seed_token(transformations: object) -> str:
    """A token shaped like seed 004's: no `kid`, the issuer's key found by `iss`."""
    return mint(
        KEY, issuer_id=ISSUER, transformations=transformations, include_kid=False
    )


def write_paths(file: Path, count: int, steps: Callable[[int], object]) -> Path:
    with file.open("w") as out:
        for i in range(count):
            out.write(path(seed_token(steps(i))) + "\n")
    return file


def novel(i: int) -> object:
    # Every (width, x) pair occurs once: 4096 widths, then the offset moves on.
    return tiling(width=1 + i % 4096, x=i // 4096)


def capture(port: int, request_path: str) -> tuple[list[tuple[str, str]], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("GET", request_path)
    response = conn.getresponse()
    body = response.read()
    assert response.status == 302, (response.status, body)
    headers = [(k, v) for k, v in response.getheaders() if k.lower() not in GENERATED]
    return headers, body


def floor_app(headers: Sequence[tuple[str, str]], body: bytes) -> web.Application:
    """The floor: a minimal aiohttp app answering one precomputed 302."""

    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=302, body=body, headers=headers)

    async def status(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/images/{image_id}", redirect)
    app.router.add_get("/status", status)
    return app


def serve_floor(port: int, spec: Path) -> None:
    doc = json.loads(spec.read_text())
    app = floor_app([(k, v) for k, v in doc["headers"]], doc["body"].encode())
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=40_000, help="per round and case")
    parser.add_argument(
        "--together", action="store_true", help="both loaded at once (see above)"
    )
    parser.add_argument("--serve-floor", nargs=2, metavar=("PORT", "SPEC"))
    args = parser.parse_args()
    if args.serve_floor:
        serve_floor(int(args.serve_floor[0]), Path(args.serve_floor[1]))
        return
    require_wrk()

    with tempfile.TemporaryDirectory(prefix="bench-redirect-") as tmp:
        work = Path(tmp)
        asyncio.run(seed(work))
        gw_port, floor_port = free_port(), free_port()
        gw_env = {
            "GATEWAY_DATA_DIR": str(work),
            "GATEWAY_PORT": str(gw_port),
            "CLOUDINARY_URL": CLOUDINARY_URL,
            "GATEWAY_WORKERS": "1",  # against the floor's one process
        }
        warm_path = path(seed_token(tiling()))
        print(f"minting {args.tokens} tokens per round for the cold and novel cases…")
        files = {
            (case, r): write_paths(work / f"{case}-{r}.txt", args.tokens, steps)
            for case, steps in (("cold", lambda i: tiling()), ("novel", novel))
            for r in range(args.rounds)
        }
        gateway_cmd = [sys.executable, "-m", "gateway", "serve"]
        with server(gateway_cmd, gw_port, gw_env):
            headers, body = capture(gw_port, warm_path)
            spec = work / "floor.json"
            spec.write_text(json.dumps({"headers": headers, "body": body.decode()}))
            floor_cmd = [
                sys.executable,
                __file__,
                "--serve-floor",
                str(floor_port),
                str(spec),
            ]
            with server(floor_cmd, floor_port, {}):
                if args.together:
                    together(args, work, warm_path, files, gw_port, floor_port)
                    return
                results: dict[tuple[str, str], list[Load]] = {}
                for case in ("warm", "cold", "novel"):
                    for r in range(args.rounds):
                        order = (
                            ("floor", "gateway") if r % 2 == 0 else ("gateway", "floor")
                        )
                        for name in order:
                            port = gw_port if name == "gateway" else floor_port
                            load = wrk(
                                f"http://127.0.0.1:{port}{warm_path}",
                                seconds=args.seconds,
                                connections=args.connections,
                                paths_file=None if case == "warm" else files[(case, r)],
                                lua_dir=work,
                            )
                            if (
                                case != "warm"
                                and name == "gateway"
                                and load.requests > args.tokens
                            ):
                                print(
                                    f"warning: {case} round {r} reused tokens; raise --tokens"
                                )
                            results.setdefault((case, name), []).append(load)
    report(results, args)


def together(
    args: argparse.Namespace,
    work: Path,
    warm_path: str,
    files: dict[tuple[str, int], Path],
    gw_port: int,
    floor_port: int,
) -> None:
    """Both servers under load at once; their requests/s ratio per case."""
    print(f"\nboth loaded at once, {args.seconds} s per case, {args.connections} "
          "connections each\n")  # fmt: skip
    print(f"{'case':<6} {'floor rps':>10} {'gw rps':>10} {'ratio':>6}")
    with ThreadPoolExecutor(max_workers=2) as pool:
        for case in ("warm", "cold", "novel"):
            loads = [
                pool.submit(
                    wrk,
                    f"http://127.0.0.1:{port}{warm_path}",
                    seconds=args.seconds,
                    connections=args.connections,
                    paths_file=None if case == "warm" else files[(case, 0)],
                    lua_dir=work,
                    script_tag=name,
                )
                for name, port in (("floor", floor_port), ("gateway", gw_port))
            ]
            floor, gw = (load.result() for load in loads)
            bad = f"  [{gw.bad} bad gateway answers]" if gw.bad else ""
            print(
                f"{case:<6} {floor.rps:>10.0f} {gw.rps:>10.0f} "
                f"{ratio(gw.rps, floor.rps):>5.2f}x{bad}"
            )


def report(
    results: dict[tuple[str, str], list[Load]], args: argparse.Namespace
) -> None:
    """Ratios per round, gateway against the floor measured next to it; medians.

    The machine's speed drifts over seconds, so each round's ratio compares two
    loads taken back to back (in alternating order), and the verdict is the
    median of those ratios. Requests/s and p99 are medians over rounds.
    """
    print(
        f"\n{args.rounds} rounds x {args.seconds:g} s per server and case, "
        f"{args.connections} connections, wrk -t1\n"
    )
    print(f"{'case':<6} {'floor rps':>10} {'gw rps':>10} {'ratio':>6} {'(rounds)':>11}   "
          f"{'floor p99':>9} {'gw p99':>9} {'ratio':>6}   verdict")  # fmt: skip
    failed = False
    for case in ("warm", "cold", "novel"):
        floors, gws = results[(case, "floor")], results[(case, "gateway")]
        floor, gw = summarise(floors), summarise(gws)
        rps_ratios = [ratio(g.rps, f.rps) for f, g in zip(floors, gws, strict=True)]
        p99_ratios = [
            ratio(g.p99_ms, f.p99_ms) for f, g in zip(floors, gws, strict=True)
        ]
        rps_ratio, p99_ratio = median(rps_ratios), median(p99_ratios)
        spread = f"{min(rps_ratios):.2f}-{max(rps_ratios):.2f}"
        verdict = "report only"
        if case in TARGETS:
            # Under a closed loop at saturation p99 ≈ connections / throughput, so
            # a p99 within 2x of the floor is reachable only where throughput is
            # within 2x: the p99 target is the warm case's; cold's is reported.
            p99_ok = case != "warm" or p99_ratio <= 2.0
            ok = rps_ratio >= TARGETS[case] and p99_ok and gw.bad == 0
            failed |= not ok
            p99_rule = ", p99 ≤ 2x" if case == "warm" else ""
            verdict = f"{'PASS' if ok else 'FAIL'} (≥ {TARGETS[case]}x{p99_rule})"
        if gw.bad or floor.bad:
            verdict += (
                f"  [{gw.bad} bad gateway answers, {floor.bad} bad floor answers]"
            )
        print(
            f"{case:<6} {floor.rps:>10.0f} {gw.rps:>10.0f} {rps_ratio:>5.2f}x "
            f"{spread:>11}   {floor.p99_ms:>7.2f}ms {gw.p99_ms:>7.2f}ms "
            f"{p99_ratio:>5.2f}x   {verdict}"
        )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
