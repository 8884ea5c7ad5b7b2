"""Benchmark `/v3/images/{id}/{size}` and `/image/{id}.{ext}` warm, against the 302 floor.

The gateway runs in its default configuration (render mode, its JSON access
log on, one worker) over a 3000x2000 JPEG original; the floor is a minimal
aiohttp app answering the seed's 302 (the same floor as bench_redirect). wrk
loads them back to back, round after round (alternating which goes first);
the verdict is the median of the per-round ratios, so it holds however fast
this machine is today. Cases:

  v3      the same sized JPEG again (a user's access token; from the render cache)
  v3-key  the same with an API key (looked up in the catalog on every request)
  public  the same public image URL again (anonymous; from the render cache)
  proxy   /v3 in redirect mode, streamed through the gateway's proxy from a
          local stand-in upstream, against that upstream served directly
          (scripts/bench_proxy.py's harness)

Usage: python scripts/bench_pictures.py [--seconds 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median

# Run as `python scripts/NAME.py`, only scripts/ is on sys.path: add the project
# root so that the `scripts` package imports.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway import Settings
from gateway.catalog import SqliteCatalog
from gateway.delivery.headers import NO_CACHE_HEADERS, SECURITY_HEADERS, redirect_body
from gateway.originals import LocalOriginalStore, add_original
from scripts._bench import Load, free_port, ratio, require_wrk, server, summarise, wrk
from signing import IssuerKey, mint_access_token
from transforms import Limits
from transforms.render.pillow import sample_image

ISSUER = "6b6fdb7b-65cb-4acf-97b9-d25eff795348"
IMAGE = "a0b1c2d3-0000-4000-8000-00000000b3c4"
KEY = IssuerKey(kid="bench", secret="p" * 48)
LOCATION = "https://res.cloudinary.com/demo/image/upload/c_fit,w_800/sample.jpg"


async def seed(data_dir: Path) -> str:
    """An issuer with an API key and one public 3000x2000 original; the key."""
    layout = Settings(data_dir=data_dir)
    catalog = await SqliteCatalog.open(layout.database)
    try:
        await catalog.add_issuer(issuer_id=ISSUER, secret=KEY.secret, kid=KEY.kid)
        data = sample_image(3000, 2000, ((255, 183, 77), (183, 28, 28)))
        await add_original(
            catalog,
            LocalOriginalStore(layout.originals),
            Limits(),
            issuer_id=ISSUER,
            image_id=IMAGE,
            data=data,
        )
        await catalog.update_image(IMAGE, {"is_public": True})
        return await catalog.add_api_key(ISSUER)
    finally:
        await catalog.close()


def floor_spec(file: Path) -> Path:
    headers = {**NO_CACHE_HEADERS, "Location": LOCATION, **SECURITY_HEADERS}
    file.write_text(
        json.dumps(
            {
                "headers": list(headers.items()),
                "body": redirect_body(LOCATION).decode(),
            }
        )
    )
    return file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    require_wrk()
    scripts = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory(prefix="bench-pictures-") as tmp:
        work = Path(tmp)
        api_key = asyncio.run(seed(work))
        access = mint_access_token(KEY, issuer_id=ISSUER, subject="bench", ttl=3600)
        gw_port, floor_port = free_port(), free_port()
        gw_env = {
            "GATEWAY_DATA_DIR": str(work),
            "GATEWAY_PORT": str(gw_port),
            "GATEWAY_WORKERS": "1",
        }
        cases = {
            "v3": (
                f"/v3/images/{IMAGE}/800.800.jpg",
                {"Authorization": f"Bearer {access}"},
            ),
            "v3-key": (
                f"/v3/images/{IMAGE}/800.800.jpg",
                {"Authorization": f"Bearer {api_key}"},
            ),
            "public": (f"/image/{IMAGE}.webp?w=640", {}),
        }
        floor_cmd = [
            sys.executable,
            str(scripts / "bench_redirect.py"),
            "--serve-floor",
            str(floor_port),
            str(floor_spec(work / "floor.json")),
        ]
        results: dict[tuple[str, str], list[Load]] = {}
        with (
            server([sys.executable, "-m", "gateway", "serve"], gw_port, gw_env),
            server(floor_cmd, floor_port, {}),
        ):
            for case, (path, headers) in cases.items():
                for r in range(args.rounds):
                    order = ("floor", "gateway") if r % 2 == 0 else ("gateway", "floor")
                    for name in order:
                        port, url_path = (
                            (gw_port, path)
                            if name == "gateway"
                            else (floor_port, f"/images/{IMAGE}")
                        )
                        results.setdefault((case, name), []).append(
                            wrk(
                                f"http://127.0.0.1:{port}{url_path}",
                                seconds=args.seconds,
                                connections=args.connections,
                                headers=headers if name == "gateway" else None,
                            )
                        )
    print(
        f"\n{args.rounds} rounds x {args.seconds} s per server and case, "
        f"{args.connections} connections, wrk -t1, default configuration (access log on)\n"
    )
    print(f"{'case':<7} {'floor rps':>10} {'gw rps':>10} {'ratio':>6}   "
          f"{'floor p99':>9} {'gw p99':>9}   bad")  # fmt: skip
    for case in cases:
        floors, gws = results[(case, "floor")], results[(case, "gateway")]
        floor, gw = summarise(floors), summarise(gws)
        rps = median(ratio(g.rps, f.rps) for f, g in zip(floors, gws, strict=True))
        print(
            f"{case:<7} {floor.rps:>10.0f} {gw.rps:>10.0f} {rps:>5.2f}x   "
            f"{floor.p99_ms:>7.2f}ms {gw.p99_ms:>7.2f}ms   {gw.bad}"
        )
    proxy = scripts / "bench_proxy.py"
    if proxy.exists():
        print("\nproxy (scripts/bench_proxy.py):")
        subprocess.run(
            [sys.executable, str(proxy), "--seconds", str(args.seconds)], check=True
        )


if __name__ == "__main__":
    main()
