"""Background health polling of the gateway."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from ailink._client import AIlinkClient, AsyncClient


class HealthPoller:
    """Polls ``client.is_healthy()`` every ``interval`` seconds in a daemon thread.

    ``healthy`` is the last answer (True until the first poll says otherwise).
    """

    def __init__(self, client: AIlinkClient, interval: float = 15.0) -> None:
        self.client = client
        self.interval = interval
        self.healthy = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> bool:
        self.healthy = self.client.is_healthy()
        return self.healthy

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.interval)

    def start(self) -> HealthPoller:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="ailink-health", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)
            self._thread = None

    def __enter__(self) -> HealthPoller:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class AsyncHealthPoller:
    """Polls ``await client.is_healthy()`` every ``interval`` seconds in an asyncio task."""

    def __init__(self, client: AsyncClient, interval: float = 15.0) -> None:
        self.client = client
        self.interval = interval
        self.healthy = True
        self._task: asyncio.Task[None] | None = None

    async def poll_once(self) -> bool:
        self.healthy = await self.client.is_healthy()
        return self.healthy

    async def _loop(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self.interval)

    def start(self) -> AsyncHealthPoller:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def __aenter__(self) -> AsyncHealthPoller:
        return self.start()

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()
