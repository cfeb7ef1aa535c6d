"""Offline building blocks for the core unit tests: a recording mock gateway, a fake clock and
a driver adapter that runs one scenario body on the sync and on the async client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

import ailink
from ailink import _flow

TOKEN = "ailink_v1_PLANTEDsecretTOKEN0123456789abcdef"
ADMIN_KEY = "ailink_admin_PLANTEDadminKEY0123456789"
UPSTREAM_KEY = "sk-planted-upstream-key-0123"  # fake; shaped so no scanner takes it for a real key
GATEWAY = "http://gateway.test"
SECRETS = (TOKEN, ADMIN_KEY, UPSTREAM_KEY, "PLANTEDsecretTOKEN", "PLANTEDadminKEY", "PLANTEDupstreamKEY")


def gateway_error(
    status: int,
    code: str,
    message: str = "boom",
    *,
    type_: str = "error",
    request_id: str | None = "req_0123456789abcdef0123456789abcdef",
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A gateway-generated error answer (protocol §3 body)."""
    error: dict[str, Any] = {"code": code, "message": message, "type": type_}
    if request_id is not None:
        error["request_id"] = request_id
    if details is not None:
        error["details"] = details
    return httpx.Response(status, json={"error": error}, headers=headers)


def pending_answer(approval_id: str = "apr_1", *, expires_at: str | None = None, retry_after: str | None = "2",
                   policy: str = "charges-need-approval", key: str = "k") -> httpx.Response:
    """The 202 "pending approval" answer of protocol §4.2."""
    headers = {"Location": f"/v1/approvals/{approval_id}", "Preference-Applied": "respond-async"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return httpx.Response(
        202,
        headers=headers,
        json={
            "status": "pending_approval",
            "approval_id": approval_id,
            "request_id": approval_id,
            "expires_at": expires_at,
            "poll_url": f"/v1/approvals/{approval_id}",
            "idempotency_key": key,
            "policy": policy,
            "summary": {"method": "POST", "path": "/v1/charges"},
        },
    )


class FakeClock:
    """Monotonic time that only moves when the code under test sleeps or a mock request 'takes time'."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


def install_fake_time(monkeypatch: Any, clock: FakeClock) -> None:
    """Make the flow drivers' sleeps and the flows' clock use ``clock`` (no real waiting)."""

    class _Time:
        @staticmethod
        def sleep(seconds: float) -> None:
            clock.sleeps.append(seconds)
            clock.advance(seconds)

        @staticmethod
        def monotonic() -> float:
            return clock.now

    real_sleep = asyncio.sleep

    class _Asyncio:
        @staticmethod
        async def sleep(seconds: float) -> None:
            clock.sleeps.append(seconds)
            clock.advance(seconds)
            await real_sleep(0)

    monkeypatch.setattr(_flow, "time", _Time)
    monkeypatch.setattr(_flow, "asyncio", _Asyncio)


Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class Recorder:
    """A MockTransport handler that answers from a script (or a function) and records requests."""

    script: list[httpx.Response | Exception | Handler] = field(default_factory=list)
    default: httpx.Response | Handler | None = None
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        item: Any = self.script.pop(0) if self.script else self.default
        if item is None:
            return httpx.Response(200, json={"ok": True})
        if isinstance(item, Exception):
            raise item
        if isinstance(item, httpx.Response):
            # A fresh copy each time, so one scripted answer may be returned repeatedly.
            return httpx.Response(item.status_code, headers=item.headers, content=item.content)
        return item(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def header(self, name: str) -> list[str | None]:
        return [r.headers.get(name) for r in self.requests]

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


def advertise(extensions: str = "respond-async, outcome-store", gateway: str = GATEWAY) -> None:
    """Make the client remember ``gateway`` as advertising ``extensions`` (as if it had answered)."""
    from ailink import _extensions

    answer = httpx.Response(200, headers={"X-AIlink-Extensions": extensions}, request=httpx.Request("GET", gateway))
    _extensions.remember(answer)


def sent_keys(recorder: Recorder) -> list[str | None]:
    """The idempotency key of each recorded request (the header the client sends it in)."""
    return recorder.header("x-ailink-idempotency-key")


def fast_retry(max_retries: int = 2) -> ailink.RetryConfig:
    """Real retry policy with negligible backoff (no slow tests)."""
    return ailink.RetryConfig(max_retries=max_retries, backoff_base=0.0001, backoff_cap=0.0001)


class Driver:
    """Runs one scenario on the sync or the async client, behind the same awaitable interface."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def client(self, recorder: Recorder, **options: Any) -> Any:
        options.setdefault("agent_name", "billing-agent")
        options.setdefault("retries", fast_retry())
        if self.kind == "sync":
            return ailink.AIlinkClient(TOKEN, GATEWAY, transport=recorder.transport, **options)
        return ailink.AsyncClient(TOKEN, GATEWAY, transport=recorder.transport, **options)

    async def call(self, client: Any, method: str, path: str, **kw: Any) -> httpx.Response:
        if self.kind == "sync":
            return client.request(method, path, **kw)  # type: ignore[no-any-return]
        return await client.request(method, path, **kw)  # type: ignore[no-any-return]

    async def wait(self, client: Any, approval_id: str, **kw: Any) -> ailink.ApprovalResult:
        if self.kind == "sync":
            return client.wait_for_approval(approval_id, **kw)  # type: ignore[no-any-return]
        return await client.wait_for_approval(approval_id, **kw)  # type: ignore[no-any-return]

    def tool(self, recorder: Recorder, action: ailink.ToolAction, **options: Any) -> ailink.GatewayTool:
        client = self.client(recorder, **options)
        if self.kind == "sync":
            return ailink.GatewayTool(action, client=client)
        return ailink.GatewayTool(action, async_client=client)

    async def run_tool(self, tool: ailink.GatewayTool, args: Any, context: Any = None, **kw: Any) -> ailink.ToolResult:
        if self.kind == "sync":
            return tool.run(args, context, **kw)
        return await tool.arun(args, context, **kw)


def json_body(request: httpx.Request) -> Any:
    return json.loads(request.content) if request.content else None
