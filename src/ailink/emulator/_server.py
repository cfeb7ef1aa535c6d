"""Running the emulator: in a background thread (tests, notebooks), blocking (``ailink dev``)."""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from ._factory import DemoSeed, create_app

DEFAULT_DIR = Path(".ailink")


class RunningEmulator:
    """An emulator served by uvicorn in a daemon thread on a loopback port."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, url: str, admin_key: str,
                 seed: DemoSeed | None, app: Any) -> None:
        self._server = server
        self._thread = thread
        self.url = url
        self.admin_key = admin_key
        self.seed = seed
        self.app = app

    def __repr__(self) -> str:
        return f"RunningEmulator(url={self.url!r})"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0, *, wait: bool = True) -> None:
        """Ask the server to exit; with ``wait`` (default) join its thread (the database is closed then)."""
        self._server.should_exit = True
        if wait:
            self._thread.join(timeout)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def run_in_thread(*, db_path: str = ":memory:", admin_key: str | None = None, seed: str | None = None,
                  host: str = "127.0.0.1", port: int = 0, **app_options: Any) -> RunningEmulator:
    """Start the emulator on ``host:port`` (0 = a free port) and return once it accepts connections.

    Extra keyword arguments go to :func:`create_app` (e.g. ``upstream_timeout=1.0``).
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    url_host = f"[{host}]" if ":" in host else host
    url = f"http://{url_host}:{bound_port}"
    app = create_app(db_path, admin_key, seed=seed, public_url=url, **app_options)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=1, timeout_keep_alive=30)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"ailink-emulator-{bound_port}",
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the AIlink emulator did not start")
        time.sleep(0.005)
    sock.close()  # uvicorn holds its own duplicate of the listening socket
    return RunningEmulator(server, thread, url, app.state.admin_key, app.state.demo_seed, app)


def serve(host: str = "127.0.0.1", port: int = 8443, db_path: str = str(DEFAULT_DIR / "emulator.db"),
          admin_key: str | None = None, seed: str | None = None) -> None:
    """Run the emulator in the foreground (blocking) until interrupted."""
    url = f"http://{host}:{port}"
    app = create_app(db_path, admin_key, seed=seed, public_url=url)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, timeout_keep_alive=65)


def _admin_key_file(key: str | None, directory: Path) -> tuple[str, Path | None]:
    if key:
        return key, None
    path = directory / "admin_key"
    if path.exists():
        existing = path.read_text().strip()
        if existing:
            return existing, path
    directory.mkdir(parents=True, exist_ok=True)
    key = "ailink_admin_" + secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    os.chmod(path, 0o600)
    return key, path


def main_dev(argv: list[str] | None = None) -> int:
    """``ailink dev``: run the local gateway emulator."""
    parser = argparse.ArgumentParser(prog="ailink dev", description="Run the local AIlink gateway emulator.")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--db", default=str(DEFAULT_DIR / "emulator.db"), help="SQLite file (or :memory:)")
    parser.add_argument("--admin-key", default=os.environ.get("AILINK_ADMIN_KEY"),
                        help="admin key (default: $AILINK_ADMIN_KEY, else generated into .ailink/admin_key)")
    parser.add_argument("--seed", choices=["demo"], default=None, help="create demo service, policies and tokens")
    args = parser.parse_args(argv)
    key, key_path = _admin_key_file(args.admin_key, DEFAULT_DIR)
    url = f"http://{args.host}:{args.port}"
    app = create_app(args.db, key, seed=args.seed, public_url=url)
    out = sys.stdout
    print(f"AIlink emulator listening on {url}", file=out)
    print(f"  database:  {args.db}", file=out)
    if key_path is not None:
        print(f"  admin key: in {key_path} (export AILINK_ADMIN_KEY=$(cat {key_path}))", file=out)
    else:
        print("  admin key: the one you passed (--admin-key / AILINK_ADMIN_KEY)", file=out)
    print(f"  export AILINK_GATEWAY_URL={url}", file=out)
    demo: DemoSeed | None = app.state.demo_seed
    if demo is not None:
        print("  demo seed: service 'payments' (http://payments.mock), policies "
              f"{', '.join(demo.policy_ids) or '(existing)'}", file=out)
        print(f"  demo payments token: {demo.payments_token}", file=out)
        print(f"  demo LLM token:      {demo.llm_token}", file=out)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print("  warning: bound to a non-loopback address; anyone who can reach it can use it", file=out)
    out.flush()
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                    timeout_keep_alive=65)
    except KeyboardInterrupt:
        pass
    return 0
