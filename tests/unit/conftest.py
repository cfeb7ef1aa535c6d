"""Fixtures of the offline core unit tests."""

from __future__ import annotations

import pytest

from .helpers import Driver, FakeClock, Recorder, install_fake_time


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> Driver:
    """The same scenario body, run once on ``AIlinkClient`` and once on ``AsyncClient``."""
    return Driver(request.param)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A fake clock driving the flows' sleeps and deadlines (no real waiting)."""
    fake = FakeClock()
    install_fake_time(monkeypatch, fake)
    return fake
