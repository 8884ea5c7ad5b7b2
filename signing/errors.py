"""Errors raised while minting or verifying transformation tokens.

    SigningError
    ├── MissingTokenError
    ├── TokenTooLargeError
    ├── MalformedTokenError
    ├── AlgorithmNotAllowedError
    ├── InvalidSignatureError
    ├── ExpiredTokenError
    ├── ImmatureTokenError
    ├── MissingClaimError
    ├── InvalidClaimError
    ├── LifetimeExceededError
    ├── UnknownIssuerError
    ├── UnknownKeyError
    ├── WrongSubjectError
    └── WrongTokenTypeError

No pyjwt exception leaves this package: each is translated into one of these.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AlgorithmNotAllowedError",
    "ExpiredTokenError",
    "ImmatureTokenError",
    "InvalidClaimError",
    "InvalidSignatureError",
    "LifetimeExceededError",
    "MalformedTokenError",
    "MissingClaimError",
    "MissingTokenError",
    "SigningError",
    "TokenTooLargeError",
    "UnknownIssuerError",
    "UnknownKeyError",
    "WrongSubjectError",
    "WrongTokenTypeError",
]


class SigningError(Exception):
    """Root of every token error; `detail` is safe to show to the caller."""

    code: ClassVar[str] = "token_invalid"
    title: ClassVar[str] = "Invalid token"

    def __init__(
        self,
        detail: str,
        *,
        pointer: str | None = None,
        parameter: str | None = "token",
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.pointer = pointer
        self.parameter = parameter


class MissingTokenError(SigningError):
    code = "token_missing"
    title = "Token missing"


class TokenTooLargeError(SigningError):
    code = "token_too_large"
    title = "Token too large"


class MalformedTokenError(SigningError):
    code = "token_malformed"
    title = "Malformed token"


class AlgorithmNotAllowedError(SigningError):
    code = "token_algorithm_not_allowed"
    title = "Token algorithm not allowed"


class InvalidSignatureError(SigningError):
    code = "token_signature_invalid"
    title = "Invalid token signature"


class ExpiredTokenError(SigningError):
    code = "token_expired"
    title = "Token expired"


class ImmatureTokenError(SigningError):
    code = "token_not_yet_valid"
    title = "Token not yet valid"


class MissingClaimError(SigningError):
    code = "token_claim_missing"
    title = "Token claim missing"


class InvalidClaimError(SigningError):
    code = "token_claim_invalid"
    title = "Invalid token claim"


class LifetimeExceededError(SigningError):
    code = "token_lifetime_exceeded"
    title = "Token lifetime exceeds the issuer's policy"


class UnknownIssuerError(SigningError):
    code = "token_issuer_unknown"
    title = "Unknown token issuer"


class UnknownKeyError(SigningError):
    code = "token_key_unknown"
    title = "Unknown token key"


class WrongSubjectError(SigningError):
    code = "token_subject_mismatch"
    title = "Token is for another image"


class WrongTokenTypeError(SigningError):
    """An access token where a transformation token belongs, or the reverse."""

    code = "token_type_invalid"
    title = "Wrong kind of token"
