"""HTTP-level errors, the one error-to-status table, and the JSON:API renderer.

    ApiError
    ├── BadRequestError
    │   ├── AmbiguousParameterError
    │   └── InvalidParameterError
    │       └── IiifParameterError (a IIIF path segment; the same code)
    ├── UnauthorizedError
    │   ├── ApiKeyMissingError
    │   ├── ApiKeyInvalidError
    │   ├── AccessTokenInvalidError
    │   ├── CookieWriteError
    │   └── CredentialRequiredError
    ├── ForbiddenError
    │   ├── InsufficientScopeError
    │   └── RoleRequiredError
    ├── UrlSignatureError (the local CDN stand-in)
    │   └── UrlExpiredError
    ├── NotFoundError
    │   ├── ImageNotFoundError
    │   └── RouteNotFoundError
    ├── MethodNotAllowedError
    ├── ResourceConflictError
    ├── PreconditionFailedError
    ├── PayloadTooLargeError
    ├── RequestTimeoutError
    ├── ExpectationFailedError
    ├── TooManyRequestsError
    ├── UnsupportedMediaTypeError
    ├── UnprocessableError
    │   ├── FileTooLargeError
    │   ├── MediaTypeNotAllowedError
    │   ├── UploadFieldError
    │   ├── FieldInvalidError
    │   ├── FieldUnknownError
    │   ├── FieldReadOnlyError
    │   ├── OriginNotAllowedError
    │   └── ValidationFailedError (several of the above at once)
    ├── UnsupportedFeatureError (a valid request this gateway does not serve)
    ├── OverloadedError
    │   └── CatalogUnavailableError
    ├── OriginalsUnavailableError
    ├── UpstreamError
    │   └── UpstreamTimeoutError
    └── InternalError

Together with `signing.SigningError` and `transforms.TransformError` these are
every error a client can see; `STATUS_BY_ERROR` is the only place that knows
their HTTP status.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import ClassVar, Final

from aiohttp import web

from signing import SigningError, TokenTooLargeError, WrongSubjectError
from transforms import (
    InvalidTransformError,
    LimitExceededError,
    OutputTooLargeError,
    SourceImageError,
    TransformError,
)

__all__ = [
    "JSONAPI",
    "STATUS_BY_ERROR",
    "AccessTokenInvalidError",
    "AmbiguousParameterError",
    "ApiError",
    "ApiKeyInvalidError",
    "ApiKeyMissingError",
    "BadRequestError",
    "CatalogUnavailableError",
    "CookieWriteError",
    "CredentialRequiredError",
    "ExpectationFailedError",
    "FieldInvalidError",
    "FieldReadOnlyError",
    "FieldUnknownError",
    "FileTooLargeError",
    "ForbiddenError",
    "IiifParameterError",
    "ImageNotFoundError",
    "InsufficientScopeError",
    "InternalError",
    "InvalidParameterError",
    "MediaTypeNotAllowedError",
    "MethodNotAllowedError",
    "NotFoundError",
    "OriginNotAllowedError",
    "OriginalsUnavailableError",
    "OverloadedError",
    "PayloadTooLargeError",
    "PreconditionFailedError",
    "PublicError",
    "RequestTimeoutError",
    "ResourceConflictError",
    "RoleRequiredError",
    "RouteNotFoundError",
    "TooManyParametersError",
    "TooManyRequestsError",
    "UnauthorizedError",
    "UnprocessableError",
    "UnsupportedFeatureError",
    "UnsupportedMediaTypeError",
    "UploadFieldError",
    "UpstreamError",
    "UpstreamTimeoutError",
    "UrlExpiredError",
    "UrlSignatureError",
    "ValidationFailedError",
    "error_response",
    "status_of",
]

JSONAPI: Final = "application/vnd.api+json"


class ApiError(Exception):
    """Root of the gateway's own errors; `detail` is safe to show to the caller."""

    code: ClassVar[str] = "api_error"
    title: ClassVar[str] = "Request failed"

    def __init__(
        self,
        detail: str,
        *,
        pointer: str | None = None,
        parameter: str | None = None,
        header: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.pointer = pointer
        self.parameter = parameter
        self.header = header
        self.headers = dict(headers or {})


class BadRequestError(ApiError):
    code = "bad_request"
    title = "Bad request"


class AmbiguousParameterError(BadRequestError):
    code = "parameter_ambiguous"
    title = "Parameter given more than once"


class TooManyParametersError(BadRequestError):
    code = "parameters_too_many"
    title = "Too many query parameters"


class InvalidParameterError(BadRequestError):
    code = "parameter_invalid"
    title = "Invalid parameter"  # a query parameter or a path segment


class IiifParameterError(InvalidParameterError):
    """A IIIF path segment (region, size, rotation, quality, format), not a query.

    Only the title differs: clients match `parameter_invalid`, as documented.
    """

    title = "Invalid IIIF parameter"


class UnauthorizedError(ApiError):
    """401: no credential, or one that is not good (RFC 6750 §3 challenges)."""

    code = "unauthorized"
    title = "Authentication required"
    # RFC 6750 §3.1: `invalid_token` only where a credential was sent.
    challenge: ClassVar[str] = "Bearer"

    def __init__(self, detail: str, *, header: str = "Authorization") -> None:
        super().__init__(
            detail, header=header, headers={"WWW-Authenticate": self.challenge}
        )


class ApiKeyMissingError(UnauthorizedError):
    code = "api_key_missing"
    title = "Credential missing"


class ApiKeyInvalidError(UnauthorizedError):
    code = "api_key_invalid"
    title = "API key unknown or revoked"
    challenge = 'Bearer error="invalid_token"'


class AccessTokenInvalidError(UnauthorizedError):
    code = "access_token_invalid"
    title = "Access token invalid"
    challenge = 'Bearer error="invalid_token"'


class CookieWriteError(UnauthorizedError):
    code = "cookie_cannot_write"
    title = "A cookie cannot authorise a write"


class CredentialRequiredError(UnauthorizedError):
    """Anonymous, and asking for more than the anonymous may have."""

    code = "credential_required"
    title = "Credential required for this size"


class ForbiddenError(ApiError):
    code = "forbidden"
    title = "Forbidden"


class InsufficientScopeError(ForbiddenError):
    code = "insufficient_scope"
    title = "Insufficient scope"

    def __init__(self, detail: str, *, scope: str) -> None:
        super().__init__(
            detail,
            header="Authorization",
            headers={
                "WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'
            },
        )


class RoleRequiredError(ForbiddenError):
    code = "role_required"
    title = "Role required for this size"


class UrlSignatureError(ApiError):
    """A delivery URL of the stand-in without a valid `s--…--` or `__cld_token__`."""

    code = "url_signature_invalid"
    title = "Delivery URL not signed, or signed otherwise"


class UrlExpiredError(UrlSignatureError):
    code = "url_expired"
    title = "Delivery URL expired"


class NotFoundError(ApiError):
    code = "not_found"
    title = "Not found"


class ImageNotFoundError(NotFoundError):
    code = "image_not_found"
    title = "Image not found"

    @classmethod
    def unusable(cls, detail: str, pointer: str | None) -> ImageNotFoundError:
        """The path's image (no pointer) or an overlay (its pointer) lacks what is needed."""
        return cls(detail, pointer=pointer, parameter=None if pointer else "image_id")


class RouteNotFoundError(NotFoundError):
    code = "route_not_found"
    title = "No such endpoint"


class MethodNotAllowedError(ApiError):
    code = "method_not_allowed"
    title = "Method not allowed"


class ResourceConflictError(ApiError):
    """A JSON:API document whose resource is not the one addressed (its `type`
    or `id`), refused as JSON:API says: applied, it would change the wrong one."""

    code = "resource_conflict"
    title = "Resource conflict"


class PreconditionFailedError(ApiError):
    """`If-Match` names none of the image's current state: another write came
    first, and this one would undo it unseen."""

    code = "precondition_failed"
    title = "Precondition failed"


class PayloadTooLargeError(ApiError):
    code = "payload_too_large"
    title = "Payload too large"


class RequestTimeoutError(ApiError):
    code = "request_timeout"
    title = "Request body too slow"


class ExpectationFailedError(ApiError):
    """An `Expect` other than `100-continue`: no other expectation is met."""

    code = "expectation_failed"
    title = "Expectation failed"


class TooManyRequestsError(ApiError):
    code = "too_many_requests"
    title = "Too many requests at once"


class UnsupportedMediaTypeError(ApiError):
    code = "content_type_unsupported"
    title = "Unsupported request content type"


class UnprocessableError(ApiError):
    code = "unprocessable"
    title = "Validation failed"


class FileTooLargeError(UnprocessableError):
    code = "file_too_large"
    title = "File too large"


class MediaTypeNotAllowedError(UnprocessableError):
    code = "media_type_not_allowed"
    title = "Media type not allowed"


class UploadFieldError(UnprocessableError):
    code = "upload_field_invalid"
    title = "Invalid upload"


class FieldInvalidError(UnprocessableError):
    code = "field_invalid"
    title = "Invalid field value"


class FieldUnknownError(UnprocessableError):
    code = "field_unknown"
    title = "Unknown field"


class FieldReadOnlyError(UnprocessableError):
    code = "field_read_only"
    title = "Read-only field"


class OriginNotAllowedError(UnprocessableError):
    code = "origin_not_allowed"
    title = "Origin not allowed"


class ValidationFailedError(UnprocessableError):
    """Several violations at once: rendered as one error object each."""

    code = "validation_failed"
    title = "Validation failed"

    def __init__(self, violations: list[PublicError]) -> None:
        super().__init__("; ".join(v.detail for v in violations))
        self.violations = violations


class UnsupportedFeatureError(ApiError):
    """Well formed, and meaningful, but not served here (IIIF's 501)."""

    code = "feature_not_supported"
    title = "Not supported by this gateway"


class OverloadedError(ApiError):
    code = "overloaded"
    title = "Too busy, retry shortly"


class OriginalsUnavailableError(ApiError):
    """The originals' store (S3) did not answer, or failed: worth a retry."""

    code = "originals_unavailable"
    title = "Originals store unavailable, retry shortly"


class CatalogUnavailableError(OverloadedError):
    """The catalog's database cannot be reached now (it reconnects by itself)."""

    code = "catalog_unavailable"
    title = "Catalog unavailable, retry shortly"

    def __init__(
        self,
        detail: str,
        *,
        pointer: str | None = None,
        parameter: str | None = None,
        header: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            detail,
            pointer=pointer,
            parameter=parameter,
            header=header,
            headers={"Retry-After": "1", **(headers or {})},
        )


class UpstreamError(ApiError):
    code = "upstream_error"
    title = "Upstream service failed"


class UpstreamTimeoutError(UpstreamError):
    code = "upstream_timeout"
    title = "Upstream service timed out"


class InternalError(ApiError):
    code = "internal_error"
    title = "Internal server error"


PublicError = ApiError | SigningError | TransformError

STATUS_BY_ERROR: Final[Mapping[type[Exception], int]] = {
    SigningError: 401,
    TokenTooLargeError: 400,
    WrongSubjectError: 403,
    TransformError: 400,
    InvalidTransformError: 400,
    OutputTooLargeError: 400,
    LimitExceededError: 422,
    SourceImageError: 422,
    ApiError: 500,
    BadRequestError: 400,
    NotFoundError: 404,
    MethodNotAllowedError: 405,
    ResourceConflictError: 409,
    PreconditionFailedError: 412,
    PayloadTooLargeError: 413,
    RequestTimeoutError: 408,
    ExpectationFailedError: 417,
    TooManyRequestsError: 429,
    UnauthorizedError: 401,
    ForbiddenError: 403,
    UrlSignatureError: 401,
    UnsupportedMediaTypeError: 415,
    UnprocessableError: 422,
    UnsupportedFeatureError: 501,
    OverloadedError: 503,
    OriginalsUnavailableError: 503,
    UpstreamError: 502,
    UpstreamTimeoutError: 504,
    InternalError: 500,
}


def status_of(exc: PublicError) -> int:
    """The status of the nearest class in the MRO that the table names."""
    for cls in type(exc).__mro__:
        if (status := STATUS_BY_ERROR.get(cls)) is not None:
            return status
    return 500


def error_response(exc: PublicError, *, error_id: str) -> web.Response:
    status = status_of(exc)
    violations = exc.violations if isinstance(exc, ValidationFailedError) else [exc]
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if isinstance(exc, ApiError):
        headers.update(exc.headers)
    return web.Response(
        status=status,
        body=json.dumps(
            {"errors": [_error_object(v, error_id, status) for v in violations]}
        ).encode(),
        content_type=JSONAPI,
        headers=headers,
    )


def _error_object(exc: PublicError, error_id: str, status: int) -> dict[str, object]:
    error: dict[str, object] = {
        "id": error_id,
        "status": str(status),
        "code": exc.code,
        "title": exc.title,
        "detail": exc.detail,
    }
    source = {
        key: value
        for key in ("pointer", "parameter", "header")
        if (value := getattr(exc, key, None)) is not None
    }
    if source:
        error["source"] = source
    return error
