"""Host hygiene: private database files, the host's logging left alone, secrets kept out of errors."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import httpx
import pytest

from ailink.emulator import run_in_thread
from ailink.emulator._store import Store


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_files_are_private(tmp_path: Path) -> None:
    db = tmp_path / "state" / "emulator.db"
    store = Store(str(db))
    try:
        for i in range(20):  # enough writes for the WAL and its index to exist
            store.meta_set(f"k{i}", "v")
        files = sorted(p.name for p in db.parent.iterdir())
        assert files == ["emulator.db", "emulator.db-shm", "emulator.db-wal", "emulator.db.master_key"]
        assert all(_mode(db.parent / name) == 0o600 for name in files)
        assert _mode(db.parent) == 0o700
    finally:
        store.close()


def test_existing_world_readable_files_are_tightened(tmp_path: Path) -> None:
    db = tmp_path / "emulator.db"
    Store(str(db)).close()
    for name in ("emulator.db", "emulator.db-wal", "emulator.db-journal"):
        path = tmp_path / name
        path.touch()
        os.chmod(path, 0o644)
    Store(str(db)).close()
    assert all(_mode(p) == 0o600 for p in tmp_path.iterdir() if p.exists())


def test_in_thread_emulator_leaves_the_host_logging_alone(tmp_path: Path) -> None:
    log_file = tmp_path / "host.log"
    handler = logging.FileHandler(log_file)
    root = logging.getLogger()
    root.addHandler(handler)
    watched = ["", "uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"]

    def snapshot() -> list[tuple[str, int, list[logging.Handler], bool, bool]]:
        return [(name, logging.getLogger(name).level, list(logging.getLogger(name).handlers),
                 logging.getLogger(name).propagate, logging.getLogger(name).disabled) for name in watched]

    try:
        before = snapshot()
        emulator = run_in_thread()
        try:
            assert httpx.get(f"{emulator.url}/healthz").text == "ok"
        finally:
            emulator.stop()
        assert snapshot() == before
        assert handler in root.handlers and handler.stream is not None and not handler.stream.closed
        logging.getLogger("host.app").warning("still writing after the emulator stopped")
        handler.flush()
        assert "still writing after the emulator stopped" in log_file.read_text()
    finally:
        root.removeHandler(handler)
        handler.close()


def test_internal_errors_are_typed_json_and_never_leak(caplog: pytest.LogCaptureFixture) -> None:
    emulator = run_in_thread()
    try:
        emu = emulator.app.state.emulator
        secret = "sk-never-show-this-secret-1234"

        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError(f"store exploded while holding {secret}")

        emu.store.policies_by_ids = broken  # a fault deep inside request processing
        created = httpx.post(f"{emulator.url}/api/v1/tokens", headers={"X-Admin-Key": emulator.admin_key},
                             json={"name": "t", "upstream_url": "http://payments.mock"}).json()["token_id"]
        resp = httpx.post(f"{emulator.url}/v1/charges", json={"amount": 5},
                          headers={"Authorization": f"Bearer {created}"})
    finally:
        emulator.stop()
    assert resp.status_code == 500
    error = resp.json()["error"]
    assert error["code"] == "internal_server_error" and error["type"] == "internal_error"
    assert secret not in resp.text and "Traceback" not in resp.text and "RuntimeError" not in resp.text
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "ailink.emulator")
    assert "RuntimeError" in logged and "sk-REDACTED" in logged  # the operator sees what broke...
    assert secret not in logged  # ...but not the secret
