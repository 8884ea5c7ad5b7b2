"""The `image-gateway` command: serve, and manage issuers, images and tokens."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

from aiohttp import web
from yarl import URL

from gateway.app import create_app
from gateway.catalog import CatalogError, ImageRecord, SqliteCatalog
from gateway.config import ConfigError, Settings
from gateway.delivery.links import delivery_url
from gateway.keys import DEMO, SETTINGS
from gateway.originals.ingest import add_original, discard
from gateway.originals.store import OriginalStore
from signing import ALLOWED_ALGORITHMS, IssuerPolicy, mint
from transforms import TransformError, parse_transformations
from transforms.cloudinary import DELIVERY_TYPES, FORMATS, CloudinaryAsset

__all__ = ["main"]

log = logging.getLogger("gateway")
_EXIT_USAGE: Final = 2


class CommandError(Exception):
    """A command could not do what was asked; the message says why."""


def _print(doc: object) -> None:
    print(json.dumps(doc, indent=2))


def _serve(settings: Settings, args: argparse.Namespace) -> None:
    if args.demo:
        settings = dataclasses.replace(
            settings, server=dataclasses.replace(settings.server, demo=True)
        )
    logging.basicConfig(
        level=settings.server.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    host = args.host or settings.server.host
    port = args.port or settings.server.port
    app = create_app(settings)
    # After create_app's own contexts: the demo is seeded by then.
    app.cleanup_ctx.append(_announce)
    app.cleanup_ctx.append(_frozen_heap)
    web.run_app(
        app,
        host=host,
        port=port,
        access_log=logging.getLogger("aiohttp.access")
        if settings.server.access_log
        else None,
        print=lambda _: print(
            f"image-gateway listening on {URL.build(scheme='http', host=host, port=port)}"
        ),
    )


async def _announce(app: web.Application) -> AsyncIterator[None]:
    """What a newcomer should open first: a page (downloads are for <img> tags)."""
    if DEMO in app:
        settings, demo = app[SETTINGS], app[DEMO]
        _, image, steps = demo.examples()[0]
        print(f"demo page:         {settings.base_url / 'demo'}")
        print(f"signed tiling URL: {demo.url(settings, image, steps)}", flush=True)
    yield


async def _frozen_heap(app: web.Application) -> AsyncIterator[None]:
    """Keep start-up's objects (aiohttp, the SDK, Pillow) out of every GC pass.

    A full collection walks every one of them and pauses a loaded server;
    frozen, the pauses left are those of our bounded caches (see the README's
    performance section).
    """
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


# Catalog commands: each opens the catalog, does one thing, and closes it.

_Command = Callable[[SqliteCatalog, Settings, argparse.Namespace], Awaitable[None]]


def _with_catalog(command: _Command) -> Callable[[Settings, argparse.Namespace], None]:
    def run(settings: Settings, args: argparse.Namespace) -> None:
        async def main() -> None:
            catalog = await SqliteCatalog.open(settings.database)
            try:
                await command(catalog, settings, args)
            finally:
                await catalog.close()

        asyncio.run(main())

    return run


@_with_catalog
async def _issuer_add(
    catalog: SqliteCatalog, settings: Settings, args: argparse.Namespace
) -> None:
    issuer, key = await catalog.add_issuer(
        issuer_id=args.id,
        name=args.name or "",
        secret=args.secret,
        kid=args.kid,
        algorithm=args.algorithm,
        policy=IssuerPolicy(
            require_exp=args.require_exp, max_lifetime=args.max_lifetime
        ),
    )
    api_key = await catalog.add_api_key(issuer.id)
    _print(
        {
            "id": issuer.id,
            "name": issuer.name,
            "kid": key.kid,
            "algorithm": key.algorithm,
            "secret": key.secret,
            "api_key": api_key,
        }
    )


@_with_catalog
async def _api_key_create(
    catalog: SqliteCatalog, settings: Settings, args: argparse.Namespace
) -> None:
    _print({"issuer": args.issuer, "api_key": await catalog.add_api_key(args.issuer)})


@_with_catalog
async def _api_key_list(
    catalog: SqliteCatalog, settings: Settings, args: argparse.Namespace
) -> None:
    _print(
        [
            {
                "prefix": f"sk_{k.prefix}",
                "createdAt": k.created_at,
                "revokedAt": k.revoked_at,
            }
            for k in await catalog.api_keys(args.issuer)
        ]
    )


@_with_catalog
async def _api_key_revoke(
    catalog: SqliteCatalog, settings: Settings, args: argparse.Namespace
) -> None:
    await catalog.revoke_api_key(args.issuer, args.prefix)
    _print({"issuer": args.issuer, "prefix": args.prefix, "revoked": True})


@_with_catalog
async def _issuer_list(
    catalog: SqliteCatalog, settings: Settings, args: argparse.Namespace
) -> None:
    _print(
        [
            {"id": i.id, "name": i.name, "kids": [k.kid for k in i.keys]}
            for i in await catalog.issuers()
        ]
    )


@_with_catalog
async def _signing_key_add(
    catalog: SqliteCatalog, settings: Settings, args: argparse.Namespace
) -> None:
    key = await catalog.add_key(
        args.issuer, secret=args.secret, kid=args.kid, algorithm=args.algorithm
    )
    _print({"issuer": args.issuer, "kid": key.kid, "secret": key.secret})


@_with_catalog
async def _signing_key_revoke(
    catalog: SqliteCatalog, settings: Settings, args: argparse.Namespace
) -> None:
    await catalog.revoke_key(args.issuer, args.kid)
    _print({"issuer": args.issuer, "kid": args.kid, "revoked": True})


@_with_catalog
async def _image_add(
    catalog: SqliteCatalog, settings: Settings, args: argparse.Namespace
) -> None:
    if args.file is None and args.public_id is None:
        raise CommandError("give --file, --public-id, or both")
    asset = None
    if args.public_id is not None:
        try:
            asset = CloudinaryAsset(
                public_id=args.public_id,
                version=args.version,
                format=args.format,
                delivery_type=args.delivery_type or settings.upstream.delivery_type,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
    if args.file is None:
        record = await catalog.add_image(
            issuer_id=args.issuer, image_id=args.id, cloudinary=asset
        )
    else:
        path = Path(args.file)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
        try:
            record = await add_original(
                catalog,
                OriginalStore(settings.originals),
                settings.limits,
                issuer_id=args.issuer,
                data=data,
                filename=path.name,
                image_id=args.id,
                cloudinary=asset,
            )
        except TransformError as exc:
            raise CommandError(f"{path}: {exc.detail}") from exc
    _print(_image_doc(record))


@_with_catalog
async def _image_rm(
    catalog: SqliteCatalog, settings: Settings, args: argparse.Namespace
) -> None:
    record = await catalog.remove_image(args.id)
    if record is None:
        raise CommandError(f"no image {args.id}")
    if record.original is not None and not args.preserve_on_disk:
        await discard(catalog, OriginalStore(settings.originals), record.original)
    _print({"id": args.id, "removed": True})


@_with_catalog
async def _image_list(
    catalog: SqliteCatalog, settings: Settings, args: argparse.Namespace
) -> None:
    _print([_image_doc(r) for r in await catalog.images(args.issuer)])


def _image_doc(record: ImageRecord) -> dict[str, object]:
    doc: dict[str, object] = {"id": record.id, "issuer": record.issuer_id}
    if (asset := record.cloudinary) is not None:
        doc.update(
            publicId=asset.public_id,
            version=asset.version,
            format=asset.format,
            deliveryType=asset.delivery_type,
        )
    if (original := record.original) is not None:
        doc.update(
            originalFilename=record.original_filename,
            mediaType=original.media_type,
            fileSize=original.file_size,
            width=original.width,
            height=original.height,
            sha256=original.sha256,
        )
    return doc


@_with_catalog
async def _token_mint(
    catalog: SqliteCatalog, settings: Settings, args: argparse.Namespace
) -> None:
    try:
        transformations = json.loads(args.transformations)
    except json.JSONDecodeError as exc:
        raise CommandError(f"--transformations is not JSON: {exc}") from exc
    try:
        parse_transformations(transformations, settings.limits)
    except TransformError as exc:
        raise CommandError(f"{exc.pointer}: {exc.detail}") from exc
    issuer = await catalog.issuer(args.issuer)
    key = None
    if issuer is not None:
        key = issuer.key(args.kid) if args.kid else issuer.signing_key
    if issuer is None or key is None or key.verify_only:
        which = f"key {args.kid}" if args.kid else "signing key"
        raise CommandError(f"no issuer {args.issuer} with an active {which}")
    token = mint(
        key,
        issuer_id=issuer.id,
        transformations=transformations,
        ttl=args.ttl,
        subject=args.image if args.bind else None,
        audience=settings.tokens.audience,
    )
    url = delivery_url(settings.base_url, args.image, token)
    _print({"token": token, "url": str(url)})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="image-gateway",
        description="Signed-URL image transformation gateway. Settings come from "
        "GATEWAY_* variables and CLOUDINARY_URL (see the README).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", help="bind address (GATEWAY_HOST)")
    serve.add_argument("--port", type=int, help="TCP port (GATEWAY_PORT)")
    serve.add_argument(
        "--demo", action="store_true", help="seed demo images and serve /demo"
    )
    serve.set_defaults(run=_serve)

    issuer = commands.add_parser("issuer", help="manage issuers").add_subparsers(
        dest="action", required=True
    )
    add = issuer.add_parser("add", help="register an issuer with a first signing key")
    add.add_argument("--id", help="issuer UUID (random when omitted)")
    add.add_argument("--name")
    _key_options(add)
    add.add_argument("--require-exp", action="store_true", help="tokens must carry exp")
    add.add_argument("--max-lifetime", type=int, help="longest exp - iat, in seconds")
    add.set_defaults(run=_issuer_add)
    issuer.add_parser("list", help="list issuers").set_defaults(run=_issuer_list)
    signing_key = issuer.add_parser(
        "signing-key", help="rotate token signing keys"
    ).add_subparsers(dest="key_action", required=True)
    key_add = signing_key.add_parser("add", help="add a key (tokens name it as kid)")
    key_add.add_argument("--issuer", required=True)
    _key_options(key_add)
    key_add.set_defaults(run=_signing_key_add)
    key_revoke = signing_key.add_parser("revoke", help="revoke a key at once")
    key_revoke.add_argument("--issuer", required=True)
    key_revoke.add_argument("--kid", required=True)
    key_revoke.set_defaults(run=_signing_key_revoke)

    api_key = issuer.add_parser(
        "key", help="API keys for the /v1 catalog API (sk_…; shown once)"
    ).add_subparsers(dest="key_action", required=True)
    for name, run, help_text in (
        ("create", _api_key_create, "make another API key"),
        ("list", _api_key_list, "list keys (prefixes only)"),
        ("revoke", _api_key_revoke, "revoke a key at once"),
    ):
        command = api_key.add_parser(name, help=help_text)
        command.add_argument("--issuer", required=True)
        if name == "revoke":
            command.add_argument("--prefix", required=True, help="sk_xxxxxxxxxxxx")
        command.set_defaults(run=run)

    image = commands.add_parser("image", help="manage images").add_subparsers(
        dest="action", required=True
    )
    image_add = image.add_parser("add", help="register an image")
    image_add.add_argument("--issuer", required=True)
    image_add.add_argument("--id", help="image UUID (random when omitted)")
    image_add.add_argument("--file", help="a local original (JPEG, PNG, WebP, GIF)")
    image_add.add_argument("--public-id", help="Cloudinary public id")
    image_add.add_argument("--version", type=int)
    image_add.add_argument("--format", choices=sorted(FORMATS))
    image_add.add_argument("--delivery-type", choices=sorted(DELIVERY_TYPES))
    image_add.set_defaults(run=_image_add)
    image_list = image.add_parser("list", help="list an issuer's images")
    image_list.add_argument("--issuer", required=True)
    image_list.set_defaults(run=_image_list)
    image_rm = image.add_parser("rm", help="remove an image")
    image_rm.add_argument("--id", required=True)
    image_rm.add_argument(
        "--preserve-on-disk", action="store_true", help="keep the original file"
    )
    image_rm.set_defaults(run=_image_rm)

    token = commands.add_parser("token", help="mint tokens").add_subparsers(
        dest="action", required=True
    )
    token_mint = token.add_parser("mint", help="mint a token and its delivery URL")
    token_mint.add_argument("--issuer", required=True)
    token_mint.add_argument("--image", required=True)
    token_mint.add_argument("--transformations", default="[]", help="JSON list")
    token_mint.add_argument("--ttl", type=int, help="seconds until exp")
    token_mint.add_argument("--kid", help="signing key (newest when omitted)")
    token_mint.add_argument(
        "--bind",
        action="store_true",
        help="set sub: the token works for this image only",
    )
    token_mint.set_defaults(run=_token_mint)
    return parser


def _key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--secret", help="shared secret (random when omitted)")
    parser.add_argument("--kid", help="key id (random when omitted)")
    parser.add_argument(
        "--algorithm", default="HS256", choices=sorted(ALLOWED_ALGORITHMS)
    )


def main(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ
) -> int:
    args = _parser().parse_args(argv)
    run: Callable[[Settings, argparse.Namespace], None] = args.run
    try:
        run(Settings.from_env(environ), args)
    except (ConfigError, CatalogError, CommandError, ValueError) as exc:
        print(f"image-gateway: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    return 0
