"""Keys at rest: credential secrets sealed in the database, rotation, restarts and the master key (issue 15)."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from ailink.emulator import create_app
from ailink.testing import start_gateway

from .conftest import admin, bearer, client

SECRET = "sk-vault-test-3f9a1c77e2b54d0c"


def _files(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name) and p.is_file())


def test_secrets_are_sealed_on_disk_and_open_after_a_restart(
        tmp_path: Path, make_upstream: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AILINK_MASTER_KEY", "correct horse battery staple")
    upstream = make_upstream("provider")
    db = tmp_path / "gw.db"
    gateway, stop = start_gateway(db_path=str(db))
    try:
        cred = gateway.create_credential(SECRET)
        with admin(gateway) as a:
            token = a.post("/api/v1/tokens", json={"name": "t", "upstream_url": upstream.url,
                                                   "credential_id": cred}).json()["token_id"]
            pages = [a.get("/api/v1/credentials").text, a.get(f"/api/v1/credentials/{cred}").text]
        with client(gateway) as c:
            assert c.get("/v1/x", headers=bearer(token)).status_code == 200
    finally:
        stop()
    assert all(SECRET not in page for page in pages)
    assert SECRET.encode() not in _files(db)  # database, WAL and shared memory: no plain secret anywhere
    raw = sqlite3.connect(db).execute("SELECT secret FROM credentials").fetchone()[0]
    assert raw.startswith("aead:v1:") and SECRET not in raw
    assert not (tmp_path / "gw.db.master_key").exists()  # the key came from the environment
    gateway, stop = start_gateway(db_path=str(db))  # same master key: the secret opens again
    try:
        with client(gateway) as c:
            assert c.get("/v1/x", headers=bearer(token)).status_code == 200
    finally:
        stop()
    assert [s.headers["authorization"] for s in upstream.seen] == [f"Bearer {SECRET}"] * 2
    monkeypatch.setenv("AILINK_MASTER_KEY", "another key")
    with pytest.raises(ValueError, match="does not open the credentials") as caught:
        create_app(str(db))
    assert "another key" not in str(caught.value) and "correct horse" not in str(caught.value)


def test_a_generated_key_file_sits_next_to_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AILINK_MASTER_KEY", raising=False)
    db = tmp_path / "gw.db"
    gateway, stop = start_gateway(db_path=str(db))
    try:
        cred = gateway.create_credential(SECRET)
    finally:
        stop()
    key_file = tmp_path / "gw.db.master_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_text().strip()) >= 43
    gateway, stop = start_gateway(db_path=str(db))
    try:
        assert gateway.admin.credentials.rotate(cred, SECRET + "-2")["version"] == 2  # opens with the same file
    finally:
        stop()
    key_file.write_text("not the key\n")
    with pytest.raises(ValueError, match=r"gw\.db\.master_key"):
        create_app(str(db))


def test_plain_text_rows_of_an_older_database_are_sealed_and_purged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AILINK_MASTER_KEY", "k1")
    db = tmp_path / "old.db"
    create_app(str(db))  # the schema; then an older emulator's row, secret in plain text
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO credentials (id, name, provider, secret, injection_mode, injection_header, version, "
                 "is_active, created_at) VALUES ('cred_old', 'old', 'custom', ?, 'bearer', 'Authorization', 1, 1, 0)",
                 (SECRET,))
    conn.commit()
    conn.close()
    assert SECRET.encode() in _files(db)
    app = create_app(str(db))
    store = app.state.emulator.store
    assert store.get_credential("cred_old")["secret"] == SECRET
    store.close()
    assert SECRET.encode() not in _files(db)


def test_rotation_keeps_the_id_and_the_new_secret_is_used(ailink_gateway: Any, make_upstream: Any) -> None:
    upstream = make_upstream("provider")
    cred = ailink_gateway.create_credential(SECRET)
    with admin(ailink_gateway) as a:
        token = a.post("/api/v1/tokens", json={"name": "t", "upstream_url": upstream.url,
                                               "credential_id": cred}).json()["token_id"]
        with client(ailink_gateway) as c:
            c.get("/v1/x", headers=bearer(token))
            rotated = a.post(f"/api/v1/credentials/{cred}/rotate", json={"secret": "sk-rotated-secret-9999"})
            c.get("/v1/x", headers=bearer(token))
        assert rotated.status_code == 200 and rotated.json()["id"] == cred and rotated.json()["version"] == 2
        assert "sk-rotated" not in rotated.text and a.get(f"/api/v1/credentials/{cred}").json()["version"] == 2
        assert a.post("/api/v1/credentials/cred_nope/rotate", json={"secret": "x"}).status_code == 404
        assert a.post(f"/api/v1/credentials/{cred}/rotate", json={"secret": ""}).status_code == 422
        assert a.post(f"/api/v1/credentials/{cred}/rotate", json={}).status_code == 422
        a.delete(f"/api/v1/credentials/{cred}")
        assert a.post(f"/api/v1/credentials/{cred}/rotate", json={"secret": "sk-x"}).status_code == 404
    assert [s.headers["authorization"] for s in upstream.seen] == [f"Bearer {SECRET}", "Bearer sk-rotated-secret-9999"]


def test_a_sealed_secret_moved_to_another_row_does_not_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AILINK_MASTER_KEY", "k2")
    db = tmp_path / "gw.db"
    store = create_app(str(db)).state.emulator.store
    first = store.create_credential({"name": "a", "provider": "x", "secret": SECRET, "injection_mode": "bearer",
                                     "injection_header": "Authorization"})
    second = store.create_credential({"name": "b", "provider": "x", "secret": "other", "injection_mode": "bearer",
                                      "injection_header": "Authorization"})
    store._exec("UPDATE credentials SET secret = ? WHERE id = ?", (first["secret"], second["id"]))
    with pytest.raises(ValueError, match="does not open"):
        store.get_credential(second["id"])
    store.close()
