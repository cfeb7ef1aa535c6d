"""Keys at rest: credential secrets encrypted in the emulator's database (issue 15).

Every credential secret is stored sealed with AES-256-GCM (``cryptography``): ``aead:v1:`` + base64 of
a fresh 12-byte nonce and the ciphertext, with the credential's id as associated data (a sealed
secret copied onto another row does not open). The 256-bit key is derived (HKDF-SHA256) from the
master key: ``AILINK_MASTER_KEY`` when set, else the contents of ``<database>.master_key``, a file
created next to the database on first start (random, owner-only 0600); an in-memory database
without ``AILINK_MASTER_KEY`` gets a random key for its lifetime.

At start-up the key is checked against a sealed marker in the database: a different key stops the
emulator with :class:`VaultKeyError` (nothing is decrypted with the wrong key, nothing is
overwritten). Rows written before encryption existed are sealed in place, then the file is
vacuumed and the write-ahead log truncated so the old plain-text pages are gone; ``secure_delete``
keeps later deletions from leaving secrets behind. Secrets are never returned by any endpoint;
``POST /api/v1/credentials/{id}/rotate`` ``{"secret"}`` replaces one and keeps the id (its
``version`` goes up).
"""

from __future__ import annotations

import base64
import os
import secrets
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

if TYPE_CHECKING:
    from ._app import Emulator
    from ._store import Store

MASTER_KEY_ENV = "AILINK_MASTER_KEY"
KEY_FILE_SUFFIX = ".master_key"
SEALED_PREFIX = "aead:v1:"
_CHECK_META = "vault.check"
_CHECK_TEXT = "ailink-emulator-vault"
_SALT = b"ailink-emulator-vault"
_INFO = b"credential secrets v1"


class VaultKeyError(ValueError):
    """The master key does not open this database's credentials (or cannot be read)."""


def _key_file(db_path: str) -> str:
    return db_path + KEY_FILE_SUFFIX


def _read_or_create_key_file(path: str) -> bytes:
    """The master key in ``path``; created (random, 0600) when missing, tightened to 0600 when looser."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fd = -1
    if fd >= 0:
        material = base64.urlsafe_b64encode(secrets.token_bytes(32))
        with os.fdopen(fd, "wb") as fh:
            fh.write(material + b"\n")
        return material
    try:
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)
        with open(path, "rb") as fh:
            material = fh.read().strip()
    except OSError as exc:
        raise VaultKeyError(f"cannot read the master key file {path}: {exc.strerror}") from None
    if not material:
        raise VaultKeyError(f"the master key file {path} is empty")
    return material


class Vault:
    """Seals and opens credential secrets with one AEAD key."""

    def __init__(self, material: bytes, source: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(material)
        self._aead = AESGCM(key)
        #: Where the master key came from (for error messages; never the key itself).
        self.source = source

    def __repr__(self) -> str:
        return f"Vault(source={self.source!r})"

    @classmethod
    def for_database(cls, db_path: str) -> Vault:
        """The vault of a database: ``AILINK_MASTER_KEY``, else the key file next to it (created on first use)."""
        env = os.environ.get(MASTER_KEY_ENV)
        if env:
            return cls(env.encode(), MASTER_KEY_ENV)
        if db_path == ":memory:":
            return cls(secrets.token_bytes(32), "a random key for this in-memory database")
        path = _key_file(db_path)
        return cls(_read_or_create_key_file(path), path)

    @staticmethod
    def is_sealed(value: Any) -> bool:
        return isinstance(value, str) and value.startswith(SEALED_PREFIX)

    def seal(self, plaintext: str, context: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str, context: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(sealed[len(SEALED_PREFIX):].encode())
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise VaultKeyError(f"a stored secret does not open with the master key from {self.source}") from exc

    # -- the database
    def install(self, store: Store) -> None:
        """Check the key against the database, and seal rows stored in plain text (then purge their pages)."""
        store._exec("PRAGMA secure_delete = ON")
        marker = store.meta_get(_CHECK_META)
        if marker is None:
            store.meta_set(_CHECK_META, self.seal(_CHECK_TEXT, _CHECK_META))
        else:
            try:
                ok = self.open(marker, _CHECK_META) == _CHECK_TEXT
            except VaultKeyError:
                ok = False
            if not ok:
                raise VaultKeyError(
                    f"the master key from {self.source} does not open the credentials of {store.path}: start the "
                    f"emulator with the key this database was created with ({MASTER_KEY_ENV}, or the "
                    f"{KEY_FILE_SUFFIX} file next to it)")
        plain = [r for r in store._all("SELECT id, secret FROM credentials") if not self.is_sealed(r["secret"])]
        for row in plain:
            store._exec("UPDATE credentials SET secret = ? WHERE id = ?", (self.seal(row["secret"], row["id"]),
                                                                          row["id"]))
        if plain and store.path != ":memory:":
            store._exec("VACUUM")
            store._exec("PRAGMA wal_checkpoint(TRUNCATE)")

    def sealed_row(self, row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "secret": self.seal(row["secret"], row["id"])}

    def opened_row(self, row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is None or not self.is_sealed(row.get("secret")):
            return row
        return {**row, "secret": self.open(row["secret"], row["id"])}


def routes(emu: Emulator) -> list[tuple[str, Any, list[str]]]:
    """``POST /credentials/{cid}/rotate`` (behind the management auth)."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    from ._app import GatewayError

    async def rotate(request: Request) -> Response:
        cid = request.path_params["cid"]
        doc = await emu.json_body(request)
        secret = doc.get("secret")
        if not isinstance(secret, str) or not secret.strip():
            raise GatewayError(422, "validation_error", "secret must be a non-empty string")
        row = emu.store.rotate_credential(cid, secret)
        if row is None:
            raise GatewayError(404, "not_found", "credential not found")
        return JSONResponse({"id": row["id"], "name": row["name"], "version": row["version"],
                             "message": "Credential rotated: the new secret is used from the next request."})

    return [("/credentials/{cid}/rotate", rotate, ["POST"])]


__all__ = ["KEY_FILE_SUFFIX", "MASTER_KEY_ENV", "Vault", "VaultKeyError", "routes"]
