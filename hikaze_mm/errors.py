"""Domain errors shared by services; the HTTP layer maps each to one status code."""

from __future__ import annotations

from typing import Any


class HikazeError(Exception):
    """Base class. ``detail`` is safe to show to a user."""

    status = 500
    error = "Internal error"

    def __init__(self, detail: str, *, error: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if error is not None:
            self.error = error

    def body(self) -> dict[str, Any]:
        """The JSON body of the error response; subclasses may add fields."""
        return {"error": self.error, "detail": self.detail}


class ValidationError(HikazeError, ValueError):
    status = 400
    error = "Bad request"


class ForbiddenError(HikazeError):
    status = 403
    error = "Forbidden"


class NotFoundError(HikazeError, LookupError):
    status = 404
    error = "Not found"


class ConflictError(HikazeError):
    status = 409
    error = "Conflict"


class LockedError(HikazeError):
    status = 423
    error = "Locked"


class UnprocessableError(HikazeError):
    status = 422
    error = "Unprocessable"


class TooLargeError(HikazeError):
    status = 413
    error = "Payload too large"


class UpstreamError(HikazeError):
    """A third party we asked on the client's behalf (Civitai) failed: not the client's
    mistake, so a 5xx (502 Bad Gateway)."""

    status = 502
    error = "Upstream failure"
