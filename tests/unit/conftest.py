"""Fixtures of the offline core unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ailink import _extensions

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


@pytest.fixture(autouse=True)
def _unknown_gateways() -> Iterator[None]:
    """Every test starts with no gateway known (what each advertised is remembered per origin)."""
    _extensions.forget()
    yield
    _extensions.forget()
