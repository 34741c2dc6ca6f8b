"""The closed set of errors a pipeline stage may raise; each carries its audit reason."""

from __future__ import annotations

from gateway.core.i18n import N_


class GatewayError(Exception):
    """A refusal: HTTP status, stable snake_case reason (the audit `reason`), public text."""

    status = 500
    reason = "internal_error"
    public = N_("The gateway could not handle this request.")

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
    public = N_("The request is malformed.")


class Unauthenticated(GatewayError):
    status = 401
    reason = "unauthenticated"
    public = N_("Please log in.")


class Forbidden(GatewayError):
    status = 403
    reason = "policy_denied"
    public = N_("You are not allowed to do this.")


class NotFound(GatewayError):
    status = 404
    reason = "no_route"
    public = N_("Not found.")


class MethodNotAllowed(GatewayError):
    status = 405
    reason = "method_not_allowed"
    public = N_("This method is not allowed here.")

    def __init__(self, reason: str | None = None, public: str | None = None, *,
                 detail: str = "", allow: tuple[str, ...] = ()) -> None:
        super().__init__(reason, public, detail=detail)
        self.allow = allow  # the Allow header: the methods the route does list


class TooManyRequests(GatewayError):
    status = 429
    reason = "throttled"
    public = N_("Too many attempts. Please wait and try again.")


class PayloadTooLarge(GatewayError):
    status = 413
    reason = "body_too_large"
    public = N_("The request body is too large.")


class UpstreamUnavailable(GatewayError):
    status = 502
    reason = "upstream_unavailable"
    public = N_("The shop is not reachable right now.")


class ServiceUnavailable(GatewayError):
    status = 503
    reason = "unavailable"
    public = N_("The gateway cannot serve this request right now.")


class UpstreamTimeout(GatewayError):
    status = 504
    reason = "upstream_timeout"
    public = N_("The shop took too long to answer.")
