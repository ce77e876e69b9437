"""The errors a request gets in each API family's shape (ApiError lives in errors.py)."""

from __future__ import annotations

from edgeoss.errors import ApiError

__all__ = ["ApiError", "bad_request"]


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)
