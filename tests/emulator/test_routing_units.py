"""The breaker state machine, smooth weighted turns, capacity states and budget periods, in isolation."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from ailink.emulator._budgets import period_end, period_start
from ailink.emulator._quotas import capacity_state
from ailink.emulator._routing import CIRCUIT_BREAKER_DEFAULTS, Breaker, Router, Target, _header_text, public_url

CONFIG: dict[str, Any] = {**CIRCUIT_BREAKER_DEFAULTS, "failure_threshold": 2, "recovery_cooldown_secs": 10,
                          "half_open_max_requests": 2}


def test_breaker_opens_cools_down_probes_and_closes() -> None:
    b = Breaker()
    b.record(False, CONFIG, 0.0, probe=False)
    assert b.state(CONFIG, 0.0) == "closed" and b.admits(CONFIG, 0.0)
    b.record(True, CONFIG, 1.0, probe=False)  # a success resets the consecutive count
    b.record(False, CONFIG, 2.0, probe=False)
    b.record(False, CONFIG, 3.0, probe=False)
    assert b.state(CONFIG, 12.9) == "open" and not b.admits(CONFIG, 12.9)
    assert b.cooldown_left(CONFIG, 8.0) == 5.0
    assert b.state(CONFIG, 13.0) == "half_open" and b.admits(CONFIG, 13.0)
    b.probes = 2  # both probe slots taken
    assert not b.admits(CONFIG, 13.0)
    b.record(False, CONFIG, 14.0, probe=True)  # a failed probe opens it again, from now
    assert b.probes == 1 and b.state(CONFIG, 23.9) == "open" and b.state(CONFIG, 24.0) == "half_open"
    b.record(True, CONFIG, 25.0, probe=True)
    assert b.state(CONFIG, 25.0) == "closed" and b.consecutive == 0 and b.probes == 0
    assert (b.requests, b.failures) == (6, 4)


def test_breaker_disabled_and_failure_rate() -> None:
    off = {**CONFIG, "enabled": False}
    b = Breaker()
    for _ in range(5):
        b.record(False, off, 0.0, probe=False)
    assert b.state(off, 0.0) == "disabled" and b.admits(off, 0.0) and b.requests == 0
    rate = {**CONFIG, "failure_threshold": 99, "failure_rate_threshold": 0.5, "min_sample_size": 4}
    r = Breaker()
    for ok in (True, False, True):
        r.record(ok, rate, 0.0, probe=False)
    assert r.state(rate, 0.0) == "closed"  # 1 failure of 3: too few samples yet
    r.record(False, rate, 0.0, probe=False)
    assert r.state(rate, 0.0) == "open"  # 2 of the last 4
    assert 0 < Breaker().reliability() == 0.5


def test_smooth_weighted_turns_interleave_exactly() -> None:
    router = Router(SimpleNamespace())  # type: ignore[arg-type]
    a, b, c = Target("http://a", None, 5), Target("http://b", None, 1), Target("http://c", None, 1)
    picks = [router._weighted_turn("tok", [a, b, c]).url for _ in range(14)]
    assert picks.count("http://a") == 10 and picks.count("http://b") == picks.count("http://c") == 2
    assert "".join(p[-1] for p in picks[:7]) == "aabacaa"  # spread out, not in a block


@pytest.mark.parametrize(("limit", "spent", "state"), [
    (None, 123.0, "abundant"), (10.0, 4.9, "abundant"), (10.0, 5.0, "constrained"), (10.0, 8.0, "constrained"),
    (10.0, 8.01, "critical"), (10.0, 9.99, "critical"), (10.0, 10.0, "exhausted"), (10.0, 11.0, "exhausted"),
])
def test_capacity_states(limit: float | None, spent: float, state: str) -> None:
    assert capacity_state(limit, spent) == state


def test_periods_are_utc_days_and_months() -> None:
    now = datetime(2026, 12, 31, 23, 30, tzinfo=timezone.utc).timestamp()
    assert period_start("daily", now) == datetime(2026, 12, 31, tzinfo=timezone.utc).timestamp()
    assert period_end("daily", now) == datetime(2027, 1, 1, tzinfo=timezone.utc).timestamp()
    assert period_start("monthly", now) == datetime(2026, 12, 1, tzinfo=timezone.utc).timestamp()
    assert period_end("monthly", now) == datetime(2027, 1, 1, tzinfo=timezone.utc).timestamp()
    assert period_start("lifetime", now) == 0.0 and period_end("lifetime", now) is None


def test_shown_urls_and_header_text_hide_and_escape() -> None:
    assert public_url("https://user:pw@api.example:8443/v1?key=sk-secret") == "https://api.example:8443/v1"
    assert public_url("http://[::1]:9/x") == "http://[::1]:9/x"
    assert _header_text("via bücher\r\nx") == "via b\\xfccher\\r\\nx"
