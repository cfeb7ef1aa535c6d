"""Running the emulator: in a background thread (tests, notebooks), blocking (``ailink dev``).

The in-thread emulator leaves the host application's logging alone: uvicorn gets no logging
configuration (``log_config=None``, no levels, no handler changes), so a host's handlers keep working.
``ailink dev`` prints secrets masked and writes the real ones to a private ``.ailink/dev.env``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import socket
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from ailink._secrets import mask

from ._factory import DemoSeed, create_app
from ._generation import GENERATIONS, get_generation
from ._profile import PROFILES
from ._webhooks import shown_url

DEFAULT_DIR = Path(".ailink")
DEV_ENV_FILE = "dev.env"


class RunningEmulator:
    """An emulator served by uvicorn in a daemon thread on a loopback port."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread | None, url: str, admin_key: str,
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
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0, *, wait: bool = True) -> None:
        """Ask the server to exit; with ``wait`` (default) join its thread (the database is closed then)."""
        self.app.state.emulator.begin_shutdown()
        self._server.should_exit = True
        if wait and self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def run_in_thread(*, db_path: str = ":memory:", admin_key: str | None = None, seed: str | None = None,
                  host: str = "127.0.0.1", port: int = 0, profile: str = "ailink", generation: str = "ailink",
                  **app_options: Any) -> RunningEmulator:
    """Start the emulator on ``host:port`` (0 = a free port) and return once it accepts connections.

    ``profile`` is ``"ailink"`` (every protocol extension) or ``"real"`` (the real gateway's
    behaviour); ``generation`` is ``"ailink"`` (``X-AIlink-*``, ``ailink_v1_``) or ``"trueflow"``
    (``X-TrueFlow-*``, ``tf_v1_``). Extra keyword arguments go to :func:`create_app` (e.g.
    ``upstream_timeout=1.0``).
    The host's logging configuration is not touched.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    url_host = f"[{host}]" if ":" in host else host
    url = f"http://{url_host}:{bound_port}"
    app = create_app(db_path, admin_key, seed=seed, public_url=url, profile=profile, generation=generation,
                     **app_options)
    # log_config=None and log_level=None: uvicorn neither runs dictConfig nor changes logger levels or
    # handlers (access_log=False would empty the "uvicorn.access" handlers of the host process).
    config = uvicorn.Config(app, log_config=None, log_level=None, lifespan="on",
                            timeout_graceful_shutdown=1, timeout_keep_alive=30)
    server = uvicorn.Server(config)
    # uvicorn gets its own duplicate: asyncio's loop serves on the very socket it is given (uvloop
    # duplicates it), so the listening socket must outlive this function without uvloop installed
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock.dup()]},
                              name=f"ailink-emulator-{bound_port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the AIlink emulator did not start")
        time.sleep(0.005)
    sock.close()  # uvicorn serves on its duplicate
    return RunningEmulator(server, thread, url, app.state.admin_key, app.state.demo_seed, app)


def serve(host: str = "127.0.0.1", port: int = 8443, db_path: str = str(DEFAULT_DIR / "emulator.db"),
          admin_key: str | None = None, seed: str | None = None, profile: str = "ailink",
          generation: str = "ailink") -> None:
    """Run the emulator in the foreground (blocking) until interrupted."""
    url = f"http://{host}:{port}"
    app = create_app(db_path, admin_key, seed=seed, public_url=url, profile=profile, generation=generation)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, timeout_keep_alive=65,
                timeout_graceful_shutdown=2)


def _admin_key_file(key: str | None, directory: Path) -> tuple[str, Path | None]:
    if key:
        return key, None
    path = directory / "admin_key"
    if path.exists():
        existing = path.read_text().strip()
        if existing:
            return existing, path
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = "ailink_admin_" + secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    os.chmod(path, 0o600)
    return key, path


def write_dev_env(directory: Path, values: dict[str, str]) -> Path:
    """Write ``export NAME=value`` lines to ``directory/dev.env``, readable by the owner only."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / DEV_ENV_FILE
    tmp = directory / (DEV_ENV_FILE + ".tmp")
    lines = ["# Written by `ailink dev`. Secrets: keep this file private. Load with: source " + str(path)]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def _env_list(name: str) -> list[str]:
    return [u.strip() for u in os.environ.get(name, "").split(",") if u.strip()]


def main_dev(argv: list[str] | None = None) -> int:
    """``ailink dev``: run the local gateway emulator."""
    parser = argparse.ArgumentParser(prog="ailink dev", description="Run the local AIlink gateway emulator.")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--db", default=str(DEFAULT_DIR / "emulator.db"), help="SQLite file (or :memory:)")
    parser.add_argument("--admin-key", default=os.environ.get("AILINK_ADMIN_KEY"),
                        help="admin key (default: $AILINK_ADMIN_KEY, else generated into .ailink/admin_key)")
    parser.add_argument("--seed", choices=["demo"], default=None, help="create demo service, policies and tokens")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="ailink",
                        help="'ailink': every protocol extension (default); 'real': behave like the real gateway")
    parser.add_argument("--webhook", action="append", default=_env_list("AILINK_WEBHOOK_URLS"), metavar="URL",
                        help="send every event (approval.requested/decided/expired, policy.denied) to URL; "
                             "repeatable (default: $AILINK_WEBHOOK_URLS, comma-separated)")
    parser.add_argument("--webhook-secret", default=os.environ.get("AILINK_WEBHOOK_SECRET"),
                        help="sign --webhook deliveries with this secret (default: $AILINK_WEBHOOK_SECRET)")
    parser.add_argument("--slack-webhook", action="append", default=_env_list("AILINK_SLACK_WEBHOOK_URL"),
                        metavar="URL", help="post events to a Slack incoming webhook, with a link to the inbox "
                                            "(default: $AILINK_SLACK_WEBHOOK_URL)")
    parser.add_argument("--generation", choices=sorted(GENERATIONS), default="ailink",
                        help="header spellings and token prefix: 'ailink' (X-AIlink-*, ailink_v1_; default) "
                             "or 'trueflow' (X-TrueFlow-*, tf_v1_)")
    args = parser.parse_args(argv)
    key, key_path = _admin_key_file(args.admin_key, DEFAULT_DIR)
    url = f"http://{args.host}:{args.port}"
    try:
        app = create_app(args.db, key, seed=args.seed, public_url=url, profile=args.profile,
                         generation=args.generation, webhooks=args.webhook,
                         webhook_secret=args.webhook_secret, slack_webhooks=args.slack_webhook)
    except ValueError as exc:
        parser.error(str(exc))
    demo: DemoSeed | None = app.state.demo_seed
    env = get_generation(args.generation).env_prefix  # the variable names that generation's SDK reads
    secrets_env = {f"{env}GATEWAY_URL": url, f"{env}ADMIN_KEY": key}
    if demo is not None:
        secrets_env[f"{env}API_KEY"] = demo.payments_token
        secrets_env[f"{env}LLM_TOKEN"] = demo.llm_token
    env_path = write_dev_env(DEFAULT_DIR, secrets_env)
    out = sys.stdout
    print(f"AIlink emulator (profile {args.profile}, generation {args.generation}) listening on {url}", file=out)
    print(f"  inbox:     {url}/ui  (sign in with the admin key; approve and reject from the browser)", file=out)
    print(f"  database:  {args.db}", file=out)
    print(f"  vault:     credential secrets sealed with the master key from {app.state.emulator.store.vault.source}",
          file=out)  # [H15 routing] where the key is, never the key
    if key_path is not None:
        print(f"  admin key: {mask(key)} (in {key_path})", file=out)
    else:
        print(f"  admin key: {mask(key)} (the one you passed: --admin-key / AILINK_ADMIN_KEY)", file=out)
    if demo is not None:
        print("  demo seed: service 'payments' (http://payments.mock), policies "
              f"{', '.join(demo.policy_ids) or '(existing)'}", file=out)
        print(f"  demo payments token: {mask(demo.payments_token)} ({env}API_KEY)", file=out)
        print(f"  demo LLM token:      {mask(demo.llm_token)} ({env}LLM_TOKEN)", file=out)
    for target in app.state.emulator.events.webhooks.global_targets:
        signed = " (signed)" if target.secret else ""
        print(f"  webhook:   {shown_url(target.url, target.format)} ({target.format}){signed}", file=out)
    print(f"  secrets:   {env_path} (owner-only); load them into your shell with:", file=out)
    print(f"    source {env_path}", file=out)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print("  warning: bound to a non-loopback address; anyone who can reach it can use it", file=out)
    out.flush()
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                    timeout_keep_alive=65, timeout_graceful_shutdown=2)  # open inbox pages end the wait
    except KeyboardInterrupt:
        pass
    return 0
