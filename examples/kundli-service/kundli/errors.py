"""Error codes the API returns; each is explained in docs/troubleshooting.md."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel


class ErrorCode(str, Enum):
    VALIDATION_FAILED = "VALIDATION_FAILED"
    DATE_OUT_OF_RANGE = "DATE_OUT_OF_RANGE"
    POLAR_LATITUDE = "POLAR_LATITUDE"
    UNSUPPORTED_API_VERSION = "UNSUPPORTED_API_VERSION"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    CHART_NOT_FOUND = "CHART_NOT_FOUND"
    REPORT_NOT_FOUND = "REPORT_NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    USERNAME_TAKEN = "USERNAME_TAKEN"
    CONTRACT_VIOLATION = "CONTRACT_VIOLATION"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"


class ErrorBody(BaseModel):
    code: ErrorCode
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    """Raised by handlers; rendered as {"error": {"code", "message"}} with the given HTTP status."""

    def __init__(self, status: int, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict:
        return {"error": {"code": self.code.value, "message": self.message}}
