"""The test suite's gateways check every audit line against its record (strict mode)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from gateway.audit.records import UndeclaredAuditKey
from tests.support.gateway import gw_of


async def test_the_suite_runs_gateways_in_strict_mode(gateway: TestClient) -> None:
    """conftest sets CSRGW_AUDIT_STRICT, so every gateway a test builds checks its lines."""
    assert gw_of(gateway).audit.strict is True


async def test_an_undeclared_context_key_fails_the_line(gateway: TestClient) -> None:
    """A key no record declares, passed on through a plain dict, raises in the tests."""
    extra = {"masked_fields": 2}
    with pytest.raises(UndeclaredAuditKey, match=r"'request'.*'masked_fields'"):
        gw_of(gateway).audit.emit("request", request_id="r-bad", **extra)
    assert gw_of(gateway).audit.emit("request", request_id="r-ok")["request_id"] == "r-ok"
