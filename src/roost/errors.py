"""Roost's errors: one small tree that every dialect renders in its own wire shape.

    RoostError
    ├── ClientError              4xx: the client sent something Roost will not take
    │   ├── BadRequest           400
    │   ├── Unauthorized         401
    │   ├── Forbidden            403
    │   ├── NotFound             404
    │   ├── PayloadTooLarge      413
    │   ├── UnsupportedMediaType 415
    │   ├── ContractViolation    422
    │   ├── RateLimited          429 (carries Retry-After)
    │   └── BudgetExceeded       429 (the workspace's monthly event budget is spent)
    └── BackendError             503: Roost itself failed; never the client's fault

A client error names the field and the rule it broke, so a developer can fix the call
without reading Roost's source.
"""

from __future__ import annotations


class RoostError(Exception):
    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class ClientError(RoostError):
    status = 400
    code = "invalid_request"


class Stale(ClientError):
    """A consistent answer was asked for while the Warehouse is behind the Log."""

    status = 503
    code = "warehouse_behind"


class BadRequest(ClientError):
    status = 400
    code = "invalid_request"


class Unauthorized(ClientError):
    status = 401
    code = "unauthorized"


class Forbidden(ClientError):
    status = 403
    code = "forbidden"


class NotFound(ClientError):
    status = 404
    code = "not_found"


class PayloadTooLarge(ClientError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ClientError):
    status = 415
    code = "unsupported_media_type"


class ContractViolation(ClientError):
    status = 422
    code = "contract_violation"


class RateLimited(ClientError):
    status = 429
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


class BudgetExceeded(ClientError):
    status = 429
    code = "tier_limit"

    def __init__(self, message: str, *, rejected: int, retry_after: int) -> None:
        super().__init__(message)
        self.rejected = rejected
        self.retry_after = retry_after


class BackendError(RoostError):
    status = 503
    code = "backend_unavailable"


WRONG_KIND = "Please use a write key for write requests."
