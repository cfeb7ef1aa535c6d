"""Gateway health: background pollers, and the fallback to a direct provider client during outages."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import warnings
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ailink._client import AIlinkClient, AsyncClient

__all__ = ["AsyncFallbackChat", "AsyncHealthPoller", "FallbackChat", "HealthPoller"]


class HealthPoller:
    """Polls ``client.is_healthy(timeout)`` every ``interval`` seconds in a daemon thread.

    ``is_healthy`` (also ``healthy``) is the last answer (True until the first poll says otherwise).
    """

    def __init__(self, client: AIlinkClient, interval: float = 15.0, timeout: float = 3.0) -> None:
        self.client = client
        self.interval = interval
        self.timeout = timeout
        self.healthy = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_healthy(self) -> bool:
        """The last answer of the gateway's health check."""
        return self.healthy

    def poll_once(self) -> bool:
        self.healthy = self.client.is_healthy(timeout=self.timeout)
        return self.healthy

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.interval)

    def start(self) -> HealthPoller:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="ailink-health", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + self.timeout + 5)
            self._thread = None

    def __enter__(self) -> HealthPoller:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class AsyncHealthPoller:
    """Polls ``await client.is_healthy(timeout)`` every ``interval`` seconds in an asyncio task."""

    def __init__(self, client: AsyncClient, interval: float = 15.0, timeout: float = 3.0) -> None:
        self.client = client
        self.interval = interval
        self.timeout = timeout
        self.healthy = True
        self._task: asyncio.Task[None] | None = None

    @property
    def is_healthy(self) -> bool:
        """The last answer of the gateway's health check."""
        return self.healthy

    async def poll_once(self) -> bool:
        self.healthy = await self.client.is_healthy(timeout=self.timeout)
        return self.healthy

    async def _loop(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self.interval)

    async def start(self) -> AsyncHealthPoller:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def __aenter__(self) -> AsyncHealthPoller:
        return await self.start()

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()


def _warn_bypass(gateway_url: str) -> None:
    warnings.warn(
        f"AIlink gateway at {gateway_url} is unreachable: using the fallback client, "
        "so requests bypass policy enforcement and audit logging.",
        RuntimeWarning,
        stacklevel=3,
    )


def _outages() -> tuple[type[BaseException], ...]:
    import openai

    return (openai.APIConnectionError, openai.InternalServerError)


class FallbackChat:
    """Gateway chat with a fallback openai client for outages (what ``client.with_fallback`` returns).

    ``with ... as oai`` checks the gateway's health once and yields the gateway's openai client, or
    ``fallback`` when the gateway is down. ``chat(model, messages)`` falls back call by call, on
    outages only (connection errors and 5xx; a policy answer is the gateway working and is raised).
    ``used_fallback`` tells which one served last.
    """

    def __init__(self, client: AIlinkClient, fallback: Any, *, health_timeout: float = 3.0) -> None:
        self.client = client
        self.fallback = fallback
        self.health_timeout = health_timeout
        self.used_fallback = False

    @property
    def primary(self) -> Any:
        """The gateway's openai client."""
        return self.client._cached_openai()

    def __enter__(self) -> Any:
        self.used_fallback = not self.client.is_healthy(timeout=self.health_timeout)
        if self.used_fallback:
            _warn_bypass(self.client.gateway_url)
            return self.fallback
        return self.primary

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        return None

    def chat(self, model: str, messages: str | Mapping[str, Any] | Sequence[Any], **kwargs: Any) -> Any:
        from ailink._client import normalize_messages

        messages = normalize_messages(messages)
        try:
            self.used_fallback = False
            return self.primary.chat.completions.create(model=model, messages=messages, **kwargs)
        except _outages():
            self.used_fallback = True
            return self.fallback.chat.completions.create(model=model, messages=messages, **kwargs)


class AsyncFallbackChat:
    """The asyncio twin of :class:`FallbackChat` (``async with client.with_fallback(fallback) as oai``)."""

    def __init__(self, client: AsyncClient, fallback: Any, *, health_timeout: float = 3.0) -> None:
        self.client = client
        self.fallback = fallback
        self.health_timeout = health_timeout
        self.used_fallback = False

    @property
    def primary(self) -> Any:
        """The gateway's async openai client."""
        return self.client._cached_openai()

    async def __aenter__(self) -> Any:
        self.used_fallback = not await self.client.is_healthy(timeout=self.health_timeout)
        if self.used_fallback:
            _warn_bypass(self.client.gateway_url)
            return self.fallback
        return self.primary

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        return None

    async def chat(self, model: str, messages: str | Mapping[str, Any] | Sequence[Any], **kwargs: Any) -> Any:
        from ailink._client import normalize_messages

        messages = normalize_messages(messages)
        try:
            self.used_fallback = False
            return await self.primary.chat.completions.create(model=model, messages=messages, **kwargs)
        except _outages():
            self.used_fallback = True
            return await self.fallback.chat.completions.create(model=model, messages=messages, **kwargs)
