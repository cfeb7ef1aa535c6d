"""The ``faults`` marker: fault-proxy, soak and restart tests (deselect with ``-m "not faults"``)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: fault-injection tests (fault proxy, exactly-once soak, restart)")
