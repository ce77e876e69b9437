"""The errors a request gets in each API family's shape (ApiError lives in errors.py),
and the type checks that make a client's value of the wrong type one of them: code
that reaches into a body goes through these, never trusting a field's JSON type."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgeoss.errors import ApiError

__all__ = ["ApiError", "bad_request", "list_of", "object_of"]


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def object_of(value: object, where: str) -> Mapping[str, Any]:
    """`value` (the body's `where`) if it is a JSON object, else a bad request naming it."""
    if not isinstance(value, Mapping):
        raise bad_request(f"{where} must be an object", where)
    return value


def list_of(value: object, where: str) -> list[Any]:
    """`value` (the body's `where`) if it is a JSON array, else a bad request naming it."""
    if not isinstance(value, list):
        raise bad_request(f"{where} must be a list", where)
    return value
