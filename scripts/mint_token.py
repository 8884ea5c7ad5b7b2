"""Mint a transformation token without a running server or a catalog.

    python scripts/mint_token.py --issuer UUID --secret SECRET \
        --transformations '[{"crop": "fit", "width": 800}]' [--kid KID] [--ttl 300] \
        [--audience AUD] [--image UUID [--base-url URL]]

Prints the token, or with --image the full delivery URL too, as JSON. Like
the gateway's own commands it reads the gateway's configuration: the
audience defaults to GATEWAY_TOKEN_AUDIENCE (a gateway that sets it refuses
tokens without it), the base URL to GATEWAY_PUBLIC_URL, else the host and
port of GATEWAY_HOST and GATEWAY_PORT.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping

from yarl import URL

from gateway.config import ConfigError, Settings
from gateway.delivery.links import delivery_url
from signing import ALLOWED_ALGORITHMS, IssuerKey, mint
from transforms import Limits, TransformError, parse_transformations


def main(argv: list[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    try:
        settings = Settings.from_env(environ)
    except ConfigError as exc:
        print(f"mint_token: {exc}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(description="Mint a transformation token.")
    parser.add_argument("--issuer", required=True, help="the issuer's id (iss)")
    parser.add_argument("--secret", required=True, help="the issuer key's secret")
    parser.add_argument("--kid", default=None, help="key id put in the header")
    parser.add_argument(
        "--algorithm", default="HS256", choices=sorted(ALLOWED_ALGORITHMS)
    )
    parser.add_argument("--transformations", default="[]", help="JSON list of steps")
    parser.add_argument("--ttl", type=int, help="seconds until exp")
    parser.add_argument(
        "--audience",
        default=settings.tokens.audience,
        help="aud (default: GATEWAY_TOKEN_AUDIENCE, if set)",
    )
    parser.add_argument("--image", help="also print the delivery URL for this image")
    parser.add_argument(
        "--base-url",
        default=str(settings.base_url),
        help=f"the gateway's public URL (default: {settings.base_url})",
    )
    args = parser.parse_args(argv)
    try:
        steps = json.loads(args.transformations)
        parse_transformations(steps, Limits())
        key = IssuerKey(
            kid=args.kid or "default", secret=args.secret, algorithm=args.algorithm
        )
    except (json.JSONDecodeError, ValueError) as exc:
        print(f"mint_token: {exc}", file=sys.stderr)
        return 2
    except TransformError as exc:
        print(f"mint_token: {exc.pointer}: {exc.detail}", file=sys.stderr)
        return 2
    token = mint(
        key,
        issuer_id=args.issuer,
        transformations=steps,
        ttl=args.ttl,
        audience=args.audience,
        include_kid=args.kid is not None,
    )
    doc: dict[str, str] = {"token": token}
    if args.image:
        doc["url"] = str(delivery_url(URL(args.base_url), args.image, token))
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
