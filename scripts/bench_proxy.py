"""Proxy throughput: images streamed through the gateway's `Proxy` against fetching them directly.

A stand-in Cloudinary (a minimal aiohttp app answering one image from memory)
and the gateway's app with one more route, `/bench/proxied`, which streams
that image through the app's real `Proxy` (its pooled session, checks and
middlewares), each run as one process on loopback. wrk loads the stand-in
directly and through the gateway back to back, round after round
(alternating which goes first); the verdict is the median of the per-round
ratios of requests/s. Neither side writes an access log.

Usage: python scripts/bench_proxy.py [--seconds 3] [--rounds 3] [--kib 200]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path
from statistics import median

from aiohttp import web

# Run as `python scripts/NAME.py`, only scripts/ is on sys.path: add the project
# root so that the `scripts` package imports.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway import Settings, create_app
from gateway.keys import PROXY, REQUEST_ID
from scripts._bench import Load, free_port, ratio, require_wrk, server, summarise, wrk

__all__ = ["proxy_app", "stand_in"]


async def _status(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def image(kib: int) -> bytes:
    """A JPEG's magic number, then incompressible bytes: all the proxy looks at."""
    return b"\xff\xd8\xff\xe0" + hashlib.shake_256(b"bench").digest(kib * 1024 - 4)


def stand_in(body: bytes) -> web.Application:
    """Cloudinary's delivery host, answering `/image.jpg` from memory."""

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/image.jpg", answer)
    app.router.add_get("/status", _status)
    return app


def proxy_app(upstream: str, data_dir: Path) -> web.Application:
    """The gateway, with `/bench/proxied` streaming `upstream` through its `Proxy`."""

    async def proxied(request: web.Request) -> web.StreamResponse:
        return await request.app[PROXY].stream(
            request, upstream, headers={"X-Request-Id": request[REQUEST_ID]}
        )

    app = create_app(Settings(data_dir=data_dir))
    app.router.add_get("/bench/proxied", proxied)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--kib", type=int, default=200, help="size of the image")
    parser.add_argument("--serve-upstream", nargs=2, metavar=("PORT", "KIB"))
    parser.add_argument("--serve-proxy", nargs=3, metavar=("PORT", "URL", "DIR"))
    args = parser.parse_args()
    if args.serve_upstream:
        port, kib = map(int, args.serve_upstream)
        web.run_app(
            stand_in(image(kib)),
            port=port,
            host="127.0.0.1",
            access_log=None,
            print=None,
        )
        return
    if args.serve_proxy:
        port, url, data_dir = args.serve_proxy
        app = proxy_app(url, Path(data_dir))
        web.run_app(app, port=int(port), host="127.0.0.1", access_log=None, print=None)
        return
    require_wrk()

    up_port, gw_port = free_port(), free_port()
    direct = f"http://127.0.0.1:{up_port}/image.jpg"
    me = [sys.executable, __file__]
    results: dict[str, list[Load]] = {"direct": [], "proxied": []}
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as work:
        upstream_cmd = [*me, "--serve-upstream", str(up_port), str(args.kib)]
        proxy_cmd = [*me, "--serve-proxy", str(gw_port), direct, work]
        with server(upstream_cmd, up_port, {}), server(proxy_cmd, gw_port, {}):
            for r in range(args.rounds):
                order = ("direct", "proxied") if r % 2 == 0 else ("proxied", "direct")
                for name in order:
                    url = (
                        direct
                        if name == "direct"
                        else f"http://127.0.0.1:{gw_port}/bench/proxied"
                    )
                    results[name].append(
                        wrk(url, seconds=args.seconds, connections=args.connections)
                    )
    report(results, args)


def report(results: dict[str, list[Load]], args: argparse.Namespace) -> None:
    directs, proxieds = results["direct"], results["proxied"]
    rps_ratios = [ratio(p.rps, d.rps) for d, p in zip(directs, proxieds, strict=True)]
    d, p = summarise(directs), summarise(proxieds)
    mib = args.kib / 1024
    print(
        f"\n{args.rounds} rounds x {args.seconds} s each, {args.connections} connections,"
        f" a {args.kib} KiB image, wrk -t1\n"
    )
    print(f"{'':<8} {'req/s':>8} {'MiB/s':>8} {'p99':>9}")
    for name, load in (("direct", d), ("proxied", p)):
        print(
            f"{name:<8} {load.rps:>8.0f} {load.rps * mib:>8.1f} {load.p99_ms:>7.2f}ms"
            + (f"  [{load.bad} bad answers]" if load.bad else "")
        )
    print(
        f"\nproxied/direct: {median(rps_ratios):.2f}x"
        f" (rounds {min(rps_ratios):.2f}-{max(rps_ratios):.2f})"
    )
    sys.exit(1 if d.bad or p.bad else 0)


if __name__ == "__main__":
    main()
