"""The error taxonomy: every concrete class renders as one well-formed JSON:API error."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import pytest

import gateway.errors
import signing.errors
import transforms.errors
from gateway.errors import (
    STATUS_BY_ERROR,
    ApiError,
    ApiKeyMissingError,
    FieldInvalidError,
    InsufficientScopeError,
    PublicError,
    UnauthorizedError,
    ValidationFailedError,
    error_response,
    status_of,
)
from signing import ExpiredTokenError, SigningError
from transforms import TransformError


def concrete_errors() -> list[type[PublicError]]:
    found: list[type[PublicError]] = []
    for module in (gateway.errors, signing.errors, transforms.errors):
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, type) and issubclass(
                value, ApiError | SigningError | TransformError
            ):
                found.append(value)
    return found


ERRORS = concrete_errors()


def make(error: type[PublicError]) -> PublicError:
    """One instance of each class, through the constructor it has."""
    if issubclass(error, ValidationFailedError):
        return error([FieldInvalidError("something specific", pointer="/x")])
    if issubclass(error, InsufficientScopeError | UnauthorizedError):
        exc = (
            error("something specific", scope="images:write")
            if issubclass(error, InsufficientScopeError)
            else error("something specific")
        )
        exc.pointer = "/x"
        return exc
    return error("something specific", pointer="/x")


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: e.__name__)
def test_error_renders_as_json_api(error: type[PublicError]) -> None:
    exc = make(error)
    response = error_response(exc, error_id="req-1")
    assert response.content_type == "application/vnd.api+json"
    assert response.headers["Cache-Control"] == "no-store"
    assert isinstance(response.body, bytes)
    (doc,) = json.loads(response.body)["errors"]
    shown = exc.violations[0] if isinstance(exc, ValidationFailedError) else exc
    assert doc == {
        "id": "req-1",
        "status": str(response.status),
        "code": shown.code,
        "title": shown.title,
        "detail": "something specific",
        "source": doc["source"],
    }
    assert doc["source"]["pointer"] == "/x"
    assert error.__name__.endswith("Error")


def test_codes_are_unique() -> None:
    # A subclass may keep its parent's code under a more exact title.
    codes = [e.code for e in ERRORS if "code" in vars(e)]
    assert len(codes) == len(set(codes))


# Every concrete class's HTTP status and stable code: a client's contract.
STATUS_AND_CODE: Final[Mapping[str, tuple[int, str]]] = {
    "AccessTokenInvalidError": (401, "access_token_invalid"),
    "AlgorithmNotAllowedError": (401, "token_algorithm_not_allowed"),
    "AmbiguousParameterError": (400, "parameter_ambiguous"),
    "ApiError": (500, "api_error"),
    "ApiKeyInvalidError": (401, "api_key_invalid"),
    "ApiKeyMissingError": (401, "api_key_missing"),
    "BadRequestError": (400, "bad_request"),
    "CatalogUnavailableError": (503, "catalog_unavailable"),
    "CookieWriteError": (401, "cookie_cannot_write"),
    "CredentialRequiredError": (401, "credential_required"),
    "ExpiredTokenError": (401, "token_expired"),
    "ExpectationFailedError": (417, "expectation_failed"),
    "FieldInvalidError": (422, "field_invalid"),
    "FieldReadOnlyError": (422, "field_read_only"),
    "FieldUnknownError": (422, "field_unknown"),
    "FileTooLargeError": (422, "file_too_large"),
    "ForbiddenError": (403, "forbidden"),
    "IiifParameterError": (400, "parameter_invalid"),
    "ImageNotFoundError": (404, "image_not_found"),
    "ImmatureTokenError": (401, "token_not_yet_valid"),
    "InsufficientScopeError": (403, "insufficient_scope"),
    "InternalError": (500, "internal_error"),
    "InvalidClaimError": (401, "token_claim_invalid"),
    "InvalidParameterError": (400, "parameter_invalid"),
    "InvalidSignatureError": (401, "token_signature_invalid"),
    "InvalidTransformError": (400, "transform_invalid"),
    "LifetimeExceededError": (401, "token_lifetime_exceeded"),
    "LimitExceededError": (422, "image_limit_exceeded"),
    "MalformedTokenError": (401, "token_malformed"),
    "MediaTypeNotAllowedError": (422, "media_type_not_allowed"),
    "MethodNotAllowedError": (405, "method_not_allowed"),
    "MissingClaimError": (401, "token_claim_missing"),
    "MissingTokenError": (401, "token_missing"),
    "NotFoundError": (404, "not_found"),
    "OriginNotAllowedError": (422, "origin_not_allowed"),
    "OriginalsUnavailableError": (503, "originals_unavailable"),
    "OutputTooLargeError": (400, "output_too_large"),
    "OverloadedError": (503, "overloaded"),
    "PayloadTooLargeError": (413, "payload_too_large"),
    "PreconditionFailedError": (412, "precondition_failed"),
    "RequestTimeoutError": (408, "request_timeout"),
    "ResourceConflictError": (409, "resource_conflict"),
    "RoleRequiredError": (403, "role_required"),
    "RouteNotFoundError": (404, "route_not_found"),
    "SigningError": (401, "token_invalid"),
    "SourceImageError": (422, "source_image_invalid"),
    "TokenTooLargeError": (400, "token_too_large"),
    "TooManyOverlaysError": (400, "transform_too_many_overlays"),
    "TooManyParametersError": (400, "parameters_too_many"),
    "TooManyRequestsError": (429, "too_many_requests"),
    "TooManyStepsError": (400, "transform_too_many_steps"),
    "TransformError": (400, "transform_error"),
    "UnauthorizedError": (401, "unauthorized"),
    "UnknownIssuerError": (401, "token_issuer_unknown"),
    "UnknownKeyError": (401, "token_key_unknown"),
    "UnprocessableError": (422, "unprocessable"),
    "UnsupportedFeatureError": (501, "feature_not_supported"),
    "UnsupportedFormatError": (422, "source_format_unsupported"),
    "UnsupportedMediaTypeError": (415, "content_type_unsupported"),
    "UploadFieldError": (422, "upload_field_invalid"),
    "UpstreamError": (502, "upstream_error"),
    "UpstreamTimeoutError": (504, "upstream_timeout"),
    "UrlExpiredError": (401, "url_expired"),
    "UrlSignatureError": (401, "url_signature_invalid"),
    "ValidationFailedError": (422, "validation_failed"),
    "WrongSubjectError": (403, "token_subject_mismatch"),
    "WrongTokenTypeError": (401, "token_type_invalid"),
}


def test_the_table_names_every_concrete_class() -> None:
    assert set(STATUS_AND_CODE) == {e.__name__ for e in ERRORS}


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: e.__name__)
def test_each_error_class_answers_its_status_and_code(
    error: type[PublicError],
) -> None:
    status, code = STATUS_AND_CODE[error.__name__]
    exc = make(error)
    assert status_of(exc) == status
    response = error_response(exc, error_id="req-1")
    assert response.status == status
    assert isinstance(response.body, bytes)
    (doc,) = json.loads(response.body)["errors"]
    assert doc["status"] == str(status)
    assert error.code == code


def test_a_token_error_points_at_the_token_parameter() -> None:
    exc = ExpiredTokenError("the token has expired")
    assert (exc.detail, exc.pointer, exc.parameter) == (
        "the token has expired",
        None,
        "token",
    )
    assert str(exc) == "the token has expired"
    response = error_response(exc, error_id="req-1")
    assert isinstance(response.body, bytes)
    (doc,) = json.loads(response.body)["errors"]
    assert doc["source"] == {"parameter": "token"}


def test_a_token_error_may_point_into_the_payload_instead() -> None:
    exc = SigningError("bad", pointer="/sub", parameter=None)
    assert (exc.pointer, exc.parameter) == ("/sub", None)


def test_an_unauthorized_error_asks_for_a_bearer_token() -> None:
    response = error_response(ApiKeyMissingError("no key"), error_id="req-1")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert isinstance(response.body, bytes)
    (doc,) = json.loads(response.body)["errors"]
    assert doc["source"] == {"header": "Authorization"}


def test_every_table_entry_is_a_known_error() -> None:
    assert set(STATUS_BY_ERROR) <= {ApiError, SigningError, TransformError, *ERRORS}


def test_several_violations_render_as_several_errors() -> None:
    exc = ValidationFailedError(
        [
            FieldInvalidError("bad a", pointer="/a"),
            FieldInvalidError("bad b", pointer="/b"),
        ]
    )
    response = error_response(exc, error_id="req-2")
    assert response.status == 422
    assert isinstance(response.body, bytes)
    errors = json.loads(response.body)["errors"]
    assert [e["source"]["pointer"] for e in errors] == ["/a", "/b"]


# Never answered: each only groups the codes below it.
_ABSTRACT: Final = frozenset(
    {"api_error", "unauthorized", "forbidden", "not_found", "transform_error"}
)
# Several errors at once are answered as one error object each.
_CONTAINERS: Final = frozenset({"validation_failed"})


def test_the_readme_lists_every_code_an_answer_may_carry() -> None:
    """A client's author looks codes up there: none missing, none invented."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("Every code an answer may carry", 1)[1].split("\n\n", 2)[1]
    classes: dict[str, type[PublicError]] = {
        cls.code: cls
        for base in (ApiError, SigningError, TransformError)
        for cls in _subclasses(base)
    }
    listed: dict[str, set[int]] = {}
    for line in table.splitlines()[2:]:
        codes, statuses = line.split("|")[1:3]
        for code in re.findall(r"`([a-z_]+)`", codes):
            listed[code] = {int(n) for n in re.findall(r"[0-9]{3}", statuses)}
    assert set(listed) == set(classes) - _ABSTRACT - _CONTAINERS
    for code, allowed in listed.items():
        assert status_of(make(classes[code])) in allowed, code


def _subclasses(cls: type[PublicError]) -> list[type[PublicError]]:
    below: list[type[PublicError]] = [*cls.__subclasses__()]
    return [cls, *(s for sub in below for s in _subclasses(sub))]
