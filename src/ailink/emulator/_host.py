"""Many emulators in one background thread: what the test fixtures run on.

An :class:`EmulatorHost` runs one event loop in a daemon thread. Each :meth:`EmulatorHost.start`
builds a complete emulator (its own app, database, admin key, mocks and counters) and serves it with
its own uvicorn server on its own loopback port, on that loop. A test gets what a fresh emulator gives
(nothing is shared with other tests but the thread), for a few milliseconds instead of a thread, an
event loop and a server start-up of its own. A port is never handed to two emulators of one host, so
a client's memory of a gateway (its extensions, by origin) never carries over to another.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from concurrent.futures import Future
from typing import Any

import uvicorn

from ._factory import create_app
from ._server import RunningEmulator

#: How long :meth:`EmulatorHost.start` waits for a server to accept connections.
START_TIMEOUT = 15.0


def _new_loop() -> asyncio.AbstractEventLoop:
    """The event loop uvicorn picks by default (uvloop when installed, as ``run_in_thread`` gets it):
    serving on a plain asyncio loop from a thread is several times slower."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()  # type: ignore[no-any-return]


class HostedEmulator(RunningEmulator):
    """An emulator served on an :class:`EmulatorHost`'s loop (the interface of :class:`RunningEmulator`)."""

    def __init__(self, server: uvicorn.Server, task: Future[None], url: str, app: Any) -> None:
        super().__init__(server, None, url, app.state.admin_key, app.state.demo_seed, app)
        self._task = task

    @property
    def running(self) -> bool:
        return not self._task.done()

    def stop(self, timeout: float = 10.0, *, wait: bool = True) -> None:
        """Ask the server to exit; with ``wait`` (default) until it has (its database is closed then)."""
        self.app.state.emulator.begin_shutdown()
        self._server.should_exit = True
        if wait:
            with contextlib.suppress(Exception):  # a server that failed has stopped too
                self._task.result(timeout)


class EmulatorHost:
    """One daemon thread and event loop serving any number of emulators, each on its own port."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._loop = _new_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ailink-emulator-host", daemon=True)
        self._thread.start()
        self._used_ports: set[int] = set()
        self._served: list[HostedEmulator] = []
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"EmulatorHost(host={self.host!r}, emulators={sum(e.running for e in self._served)})"

    def _bind(self) -> socket.socket:
        """A listening socket on a port this host has not used before."""
        held: list[socket.socket] = []
        try:
            while True:
                sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self.host, 0))
                port = sock.getsockname()[1]
                with self._lock:
                    if port not in self._used_ports:
                        self._used_ports.add(port)
                        return sock
                held.append(sock)  # kept open until a new port comes up, so the OS offers another
        finally:
            for sock in held:
                sock.close()

    def start(self, *, db_path: str = ":memory:", admin_key: str | None = None, seed: str | None = None,
              profile: str = "ailink", **app_options: Any) -> HostedEmulator:
        """Start an emulator (the options of :func:`~ailink.emulator.run_in_thread`) and return once it
        accepts connections."""
        if self._closed:
            raise RuntimeError("this EmulatorHost is closed")
        sock = self._bind()
        url_host = f"[{self.host}]" if ":" in self.host else self.host
        url = f"http://{url_host}:{sock.getsockname()[1]}"
        try:
            app = create_app(db_path, admin_key, seed=seed, public_url=url, profile=profile, **app_options)
        except BaseException:
            sock.close()
            raise
        config = uvicorn.Config(app, log_config=None, log_level=None, lifespan="on",
                                timeout_graceful_shutdown=1, timeout_keep_alive=30)
        server = uvicorn.Server(config)
        finished: Future[None] = Future()
        started = asyncio.run_coroutine_threadsafe(self._launch(server, sock, finished), self._loop)
        try:
            started.result(START_TIMEOUT)
        except BaseException:
            server.should_exit = True
            raise RuntimeError("the AIlink emulator did not start") from None
        emulator = HostedEmulator(server, finished, url, app)
        with self._lock:
            self._served = [e for e in self._served if e.running]
            self._served.append(emulator)
        return emulator

    @staticmethod
    async def _launch(server: uvicorn.Server, sock: socket.socket, finished: Future[None]) -> None:
        """Serve in a task of the host's loop (``finished`` is set when it ends); return once it is up."""

        async def serve() -> None:
            try:
                await server.serve(sockets=[sock])
            finally:
                sock.close()
                finished.set_result(None)

        task = asyncio.ensure_future(serve())
        while not server.started:
            if task.done():
                raise RuntimeError("the AIlink emulator did not start")
            await asyncio.sleep(0.001)

    def close(self, timeout: float = 10.0) -> None:
        """Stop every emulator, then the thread."""
        self._closed = True
        with self._lock:
            served, self._served = self._served, []
        for emulator in served:
            emulator.stop(wait=False)
        for emulator in served:
            emulator.stop(timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> EmulatorHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["EmulatorHost", "HostedEmulator"]
