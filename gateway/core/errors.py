"""The closed set of errors a pipeline stage may raise; each carries its audit reason."""

from __future__ import annotations


class GatewayError(Exception):
    """A refusal: HTTP status, stable snake_case reason (the audit `reason`), public text."""

    status = 500
    reason = "internal_error"
    public = "The gateway could not handle this request."

    def __init__(self, reason: str | None = None, public: str | None = None,
                 *, status: int | None = None, detail: str = "") -> None:
        self.reason = reason or type(self).reason
        self.public = public or type(self).public
        self.status = status or type(self).status
        self.detail = detail
        super().__init__(f"{self.reason}: {detail or self.public}")


class BadRequest(GatewayError):
    status = 400
    reason = "bad_request"
    public = "The request is malformed."


class Unauthenticated(GatewayError):
    status = 401
    reason = "unauthenticated"
    public = "Please log in."


class Forbidden(GatewayError):
    status = 403
    reason = "policy_denied"
    public = "You are not allowed to do this."


class NotFound(GatewayError):
    status = 404
    reason = "no_route"
    public = "Not found."


class MethodNotAllowed(GatewayError):
    status = 405
    reason = "method_not_allowed"
    public = "This method is not allowed here."

    def __init__(self, reason: str | None = None, public: str | None = None, *,
                 detail: str = "", allow: tuple[str, ...] = ()) -> None:
        super().__init__(reason, public, detail=detail)
        self.allow = allow  # the Allow header: the methods the route does list


class TooManyRequests(GatewayError):
    status = 429
    reason = "throttled"
    public = "Too many attempts. Please wait and try again."


class PayloadTooLarge(GatewayError):
    status = 413
    reason = "body_too_large"
    public = "The request body is too large."


class UpstreamUnavailable(GatewayError):
    status = 502
    reason = "upstream_unavailable"
    public = "The shop is not reachable right now."


class ServiceUnavailable(GatewayError):
    status = 503
    reason = "unavailable"
    public = "The gateway cannot serve this request right now."


class UpstreamTimeout(GatewayError):
    status = 504
    reason = "upstream_timeout"
    public = "The shop took too long to answer."
