"""impersonation.limits, notify_on and approval_minutes: read, or refused with file:line key."""

from __future__ import annotations

import pytest

from gateway.config.load import ConfigError, settings_from_text
from gateway.core.settings import VolumeLimit
from tests.support.configs import GOOD


def test_limits_are_read() -> None:
    """Each limit with its maximum and mode; mode defaults to alert."""
    settings = settings_from_text(GOOD + (
        "impersonation:\n  approval_minutes: 5\n  notify_on: [start, end]\n  limits:\n"
        "    buyers_per_hour: {max: 20, mode: block}\n    actions_per_hour: {max: 300}\n"), "<f>")
    imp = settings.impersonation
    assert imp.limits == (VolumeLimit("buyers_per_hour", 20, "block"),
                          VolumeLimit("actions_per_hour", 300, "alert"))
    assert (imp.approval_minutes, imp.notify_on) == (5, ("start", "end"))


@pytest.mark.parametrize(("snippet", "expected"), [
    ("  limits: {buyers_per_minute: {max: 1}}\n",
     "<f>:6 impersonation.limits.buyers_per_minute: unknown limit"),
    ("  limits: {buyers_per_hour: {max: 0}}\n",
     "<f>:6 impersonation.limits.buyers_per_hour.max: must be a whole number of at least 1"),
    ("  limits: {buyers_per_hour: {max: 3, mode: shout}}\n",
     "<f>:6 impersonation.limits.buyers_per_hour.mode: 'shout' is not one of alert, block"),
    ("  limits: {buyers_per_hour: {max: 3, when: now}}\n",
     "<f>:6 impersonation.limits.buyers_per_hour.when: unknown key"),
    ("  limits: [buyers_per_hour]\n", "<f>:6 impersonation.limits: must be a mapping"),
    ("  notify_on: [start, middle]\n", "<f>:6 impersonation.notify_on[1]: 'middle' is not one"),
    ("  approval_minutes: 0\n", "<f>:6 impersonation.approval_minutes: must be at least 1"),
], ids=["unknown-limit", "zero-max", "bad-mode", "unknown-key", "not-a-mapping",
        "bad-moment", "zero-minutes"])
def test_bad_values_name_file_line_and_key(snippet: str, expected: str) -> None:
    """Each problem is reported as file:line key.path: message."""
    with pytest.raises(ConfigError) as err:
        settings_from_text(GOOD + "impersonation:\n" + snippet, "<f>")
    assert any(str(p).startswith(expected) for p in err.value.problems), str(err.value)
