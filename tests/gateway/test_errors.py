"""The error taxonomy: every concrete class renders as one well-formed JSON:API error."""

from __future__ import annotations

import json

import pytest

import gateway.errors
import signing.errors
import transforms.errors
from gateway.errors import (
    STATUS_BY_ERROR,
    ApiError,
    FieldInvalidError,
    InsufficientScopeError,
    PublicError,
    UnauthorizedError,
    ValidationFailedError,
    error_response,
    status_of,
)
from signing import SigningError
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
    assert 400 <= response.status < 600
    assert error.__name__.endswith("Error")


def test_codes_are_unique() -> None:
    codes = [e.code for e in ERRORS]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("MissingTokenError", 401),
        ("TokenTooLargeError", 400),
        ("WrongSubjectError", 403),
        ("InvalidTransformError", 400),
        ("TooManyStepsError", 400),
        ("OutputTooLargeError", 400),
        ("SourceImageError", 422),
        ("ImageNotFoundError", 404),
        ("MethodNotAllowedError", 405),
        ("UnsupportedFeatureError", 501),
        ("OverloadedError", 503),
        ("OriginalsUnavailableError", 503),
        ("CatalogUnavailableError", 503),
        ("UpstreamError", 502),
        ("UpstreamTimeoutError", 504),
        ("InternalError", 500),
        ("ApiKeyMissingError", 401),
        ("UnsupportedMediaTypeError", 415),
        ("FileTooLargeError", 422),
        ("ValidationFailedError", 422),
        ("UnsupportedFormatError", 422),
    ],
)
def test_each_error_class_answers_its_status(name: str, status: int) -> None:
    (error,) = (e for e in ERRORS if e.__name__ == name)
    assert status_of(make(error)) == status


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
