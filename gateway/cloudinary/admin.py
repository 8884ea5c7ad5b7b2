"""Cloudinary's Upload API over aiohttp: upload an accepted original, destroy a deleted one.

Requests are signed with the SDK's own `api_sign_request`, with the account
passed explicitly (never the SDK's process-global config).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from gateway.catalog import Original
from gateway.errors import UpstreamError, UpstreamTimeoutError
from gateway.ops.metrics import Metrics
from transforms import json_int
from transforms.cloudinary import CloudinaryAccount, CloudinaryAsset

__all__ = ["CloudinaryUploader", "Uploaded", "Uploader", "signed_params"]


def signed_params(
    params: Mapping[str, str], account: CloudinaryAccount
) -> dict[str, str]:
    """Upload API parameters with `api_key` and the SDK's request `signature`."""
    # Imported here: the SDK reads (and may refuse) CLOUDINARY_URL when imported.
    import cloudinary.utils

    signature = cloudinary.utils.api_sign_request(
        dict(params), account.api_secret, "sha1"
    )
    if not isinstance(signature, str):  # the SDK is untyped
        raise TypeError("the SDK's signature is not a string")
    return {**params, "api_key": account.api_key, "signature": signature}


class Uploader(Protocol):
    """Where accepted originals go: Cloudinary, or the local stand-in's store."""

    @property
    def cloud_name(self) -> str: ...

    async def upload(
        self, data: bytes, *, public_id: str, delivery_type: str
    ) -> Uploaded: ...

    async def destroy(self, asset: CloudinaryAsset) -> None: ...


class CloudinaryUploader:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        account: CloudinaryAccount,
        *,
        timeout: float,
        metrics: Metrics | None = None,
    ) -> None:
        self._session = session
        self._account = account
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._metrics = metrics

    @property
    def cloud_name(self) -> str:
        return self._account.cloud_name

    def _url(self, action: str) -> str:
        """The SDK's Upload API URL, at the account's `upload_prefix` if it has one."""
        import cloudinary.utils

        account = self._account
        url = cloudinary.utils.cloudinary_api_url(
            action,
            cloud_name=account.cloud_name,
            upload_prefix=account.upload_prefix or "https://api.cloudinary.com",
            resource_type="image",
        )
        if not isinstance(url, str):  # the SDK is untyped
            raise TypeError("the SDK's API URL is not a string")
        return url

    async def upload(
        self, data: bytes, *, public_id: str, delivery_type: str
    ) -> Uploaded:
        """Upload as `delivery_type` (authenticated by default); the answer names the asset."""
        params = signed_params(
            {
                "public_id": public_id,
                "timestamp": str(int(time.time())),
                "type": delivery_type,
            },
            self._account,
        )
        form = aiohttp.FormData()
        for name, value in params.items():
            form.add_field(name, value)
        form.add_field(
            "file", data, filename=public_id, content_type="application/octet-stream"
        )
        answer = await self._post("upload", form)
        version, width, height = (
            json_int(answer.get(k)) for k in ("version", "width", "height")
        )
        try:
            if version is None or width is None or height is None:
                raise TypeError("version, width and height must be integers")
            asset = CloudinaryAsset(
                public_id=str(answer["public_id"]),
                version=version,
                format=str(answer["format"]),
                delivery_type=str(answer.get("type", delivery_type)),
            )
            return Uploaded(asset, width, height)
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamError(
                f"Cloudinary's answer was not understood: {exc}"
            ) from None

    async def destroy(self, asset: CloudinaryAsset) -> None:
        params = signed_params(
            {
                "public_id": asset.public_id,
                "timestamp": str(int(time.time())),
                "type": asset.delivery_type,
            },
            self._account,
        )
        answer = await self._post("destroy", aiohttp.FormData(params))
        if answer.get("result") not in ("ok", "not found"):
            raise UpstreamError(
                f"Cloudinary did not destroy the asset: {answer.get('result')}"
            )

    async def _post(self, action: str, form: aiohttp.FormData) -> dict[str, object]:
        started = time.perf_counter()
        failure: str | None = "unreachable"
        try:
            answer = await self._answer(action, form)
            failure = None
            return answer
        except UpstreamTimeoutError:
            failure = "timeout"
            raise
        except UpstreamError as exc:
            failure = "refused" if "answered" in exc.detail else "unreadable"
            raise
        finally:
            if self._metrics is not None:
                self._metrics.observe_upstream(
                    action, time.perf_counter() - started, failure
                )

    async def _answer(self, action: str, form: aiohttp.FormData) -> dict[str, object]:
        try:
            async with self._session.post(
                self._url(action), data=form, timeout=self._timeout
            ) as response:
                text = await response.text()
                if response.status >= 400:
                    raise UpstreamError(
                        f"Cloudinary answered {response.status} to {action}: {_message(text)}"
                    )
        except TimeoutError:
            raise UpstreamTimeoutError(
                f"Cloudinary did not answer the {action} in time"
            ) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(
                f"Cloudinary could not be reached: {type(exc).__name__}"
            ) from None
        try:
            answer = json.loads(text)
        except json.JSONDecodeError:
            raise UpstreamError("Cloudinary's answer was not JSON") from None
        if not isinstance(answer, dict):
            raise UpstreamError("Cloudinary's answer was not a JSON object")
        return answer


@dataclass(frozen=True, slots=True)
class Uploaded:
    """What Cloudinary says it stored: the asset and its size."""

    asset: CloudinaryAsset
    width: int
    height: int

    def onto(self, original: Original) -> Original:
        """The original as Cloudinary measured it (its answer is the record's truth)."""
        return dataclasses.replace(original, width=self.width, height=self.height)


def _message(text: str) -> str:
    try:
        error = json.loads(text).get("error", {})
        return str(error.get("message", ""))[:200]
    except (json.JSONDecodeError, AttributeError):
        return text[:200]
