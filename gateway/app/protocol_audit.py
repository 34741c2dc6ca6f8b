"""Audits requests aiohttp refused before any middleware ran (malformed framing, bad syntax)."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from gateway.runtime.context import CTX
from gateway.runtime.gateway import Gateway


class ProtocolAuditor(AbstractAccessLogger):
    """aiohttp's access-log hook sees every response, including its own 400s for requests
    that never reached the pipeline; those get their one audit line here.

    aiohttp hands us whatever was passed as `access_log`: here, the Gateway.
    """

    @property
    def enabled(self) -> bool:
        return True

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if request.get(CTX) is not None:
            return  # the pipeline already wrote this request's line
        gw: Gateway = self.logger  # type: ignore[assignment]
        body = getattr(response, "text", None)
        gw.audit.emit("request", request_id=secrets.token_hex(12), decision="deny",
                      reason="malformed_request", status=response.status,
                      client_ip=request.remote, outcome="refused",
                      detail=(body or "refused by the HTTP parser").split("\n", 1)[0][:200])
        gw.metrics.observe("deny", "malformed_request", time)


def runner_kwargs(gw: Gateway) -> dict[str, Any]:
    """Keyword arguments for AppRunner/TestServer so protocol refusals are audited too."""
    return {"access_log_class": ProtocolAuditor, "access_log": gw}
