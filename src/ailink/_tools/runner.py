"""``GatewayTool``: a :class:`ToolAction` bound to gateway clients, run with a framework's driver."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ailink._approval import PendingApproval
from ailink._config import ClientConfig
from ailink._errors import ApprovalPendingError, InvalidToolArgumentsError
from ailink._flow import Flow
from ailink._otel import tool_span
from ailink._secrets import scrub
from ailink._tools.action import CallContext, ParsedCall, ToolAction
from ailink._tools.flow import ApprovalPending, ApprovalResolved, PauseRequest, Rejection, ToolDriver, tool_flow
from ailink._tools.result import ToolOutcome, ToolResult, invalid_arguments_result
from ailink._tracing import trace_context

if TYPE_CHECKING:
    from ailink._client import AIlinkClient, AsyncClient

OnPending = Callable[[PendingApproval], Any]


class HookDriver(ToolDriver):
    """The driver of direct callers: wait for a decision (``on_pending`` fires when the wait
    starts) or, with ``wait=False``, return the PENDING result (re-send later to re-attach)."""

    def __init__(self, on_pending: OnPending | None = None, *, wait: bool = True) -> None:
        self.approvals = "wait" if wait else "return"
        self.on_pending = on_pending

    def emit(self, event: ApprovalPending | ApprovalResolved) -> Any:
        if self.on_pending is not None and self.approvals == "wait" and isinstance(event, ApprovalPending):
            return self.on_pending(event.pending)
        return None


class _Rejecting(ToolDriver):
    """The driver of :meth:`GatewayTool.reject`: the call replays its pause, whose answer is a rejection."""

    approvals = "pause"

    def __init__(self, reason: str | None) -> None:
        self.reason = reason

    def resumed(self, approval_id: str) -> bool:
        return True  # announced when the run paused: not again

    def pause(self, request: PauseRequest) -> Rejection:
        return Rejection(self.reason)


def _final(result: ToolResult) -> ToolResult:
    """The result of :meth:`GatewayTool.reject` if the call can never run again, else the error saying so."""
    if result.outcome in (ToolOutcome.OK, ToolOutcome.REJECTED, ToolOutcome.TIMED_OUT):
        return result
    raise ApprovalPendingError(
        f"The rejection did not take effect; the approval may still be pending: {result.content}",
        code="approval_not_withdrawn", status_code=result.status_code, request_id=result.request_id,
        details={"approval_id": result.approval_id}, idempotency_key=result.idempotency_key,
    )


class GatewayTool:
    """A :class:`ToolAction` bound to gateway clients: what every framework adapter wraps.

    ``run`` and ``arun`` share one flow (:func:`~ailink._tools.flow.tool_flow`); the adapter's
    :class:`ToolDriver` says how its framework announces and pauses for approvals. Without a
    driver the call waits for a decision (``on_pending`` fires when the wait starts), or with
    ``wait=False`` returns a PENDING result; calling again with the same context re-attaches to it.
    """

    def __init__(
        self,
        action: ToolAction,
        *,
        client: AIlinkClient | None = None,
        async_client: AsyncClient | None = None,
        approval_timeout: float | None = None,
    ) -> None:
        self.action = action
        self._client = client
        self._async_client = async_client
        base = client or async_client
        self.config = base.settings if base is not None else ClientConfig()
        self.approval_timeout = approval_timeout or self.config.approval_timeout

    def __repr__(self) -> str:
        return f"GatewayTool(name={self.action.name!r}, gateway_url={scrub(self.config.gateway_url)!r})"

    def tool_fields(self, *, json_schema: bool = False) -> dict[str, Any]:
        """What a framework's tool class is described by: ``name``, ``description`` and ``args_schema``:
        the pydantic model of the arguments, or with ``json_schema=True`` their JSON Schema (a fresh
        copy), for frameworks that take one (LangChain for generated tools, OpenAI Agents SDK, ...).

        A generated tool's pydantic model only carries its JSON Schema (``model_json_schema``) and
        accepts any object: the core validates the arguments against the schema before sending."""
        action = self.action
        schema: Any = action.args_schema() if json_schema else action.args_model
        return {"name": action.name, "description": action.description, "args_schema": schema}

    def tool_metadata(self) -> dict[str, Any]:
        """JSON-ready facts about the tool for frameworks and UIs: for a generated tool its operation
        (id, method, path template, tags) and how the token's policies gate it (``approval``), known
        before any call; put it where the framework keeps tool metadata."""
        return self.action.metadata()

    @property
    def client(self) -> AIlinkClient:
        if self._client is None:
            from ailink._client import AIlinkClient

            self._client = AIlinkClient.from_config(self.config)
        return self._client

    @property
    def async_client(self) -> AsyncClient:
        if self._async_client is None:
            from ailink._client import AsyncClient

            self._async_client = AsyncClient.from_config(self.config)
        return self._async_client

    def prepare(
        self, args: Mapping[str, Any] | str | None, context: CallContext | None = None
    ) -> tuple[ParsedCall | None, str | None, ToolResult | None]:
        """Validate ``args`` and derive the idempotency key; an invalid call gets its result here."""
        try:
            call = self.action.parse(args)
            key = self.action.idempotency_key(call, context or CallContext())
        except InvalidToolArgumentsError as exc:
            return None, None, invalid_arguments_result(self.action, exc)
        return call, key, None

    def _flow(
        self,
        args: Mapping[str, Any] | str | None,
        context: CallContext | None,
        driver: ToolDriver | None,
        wait: bool,
        on_pending: OnPending | None,
    ) -> Flow[ToolResult]:
        if driver is not None and (on_pending is not None or not wait):
            raise TypeError("pass driver= or wait=/on_pending=, not both")
        context = context or CallContext()
        trace = context.trace(self.action.name)
        # the call's requests carry its session and span; with OpenTelemetry, its execute_tool span too
        with trace_context(trace), tool_span(self.action.name, description=self.action.description,
                                             call_id=context.tool_call_id, session_id=trace.session_id) as span:
            call, key, invalid = self.prepare(args, context)
            if call is None:
                assert invalid is not None
                result = invalid
            else:
                span.describe_call(call.method, key)
                flow = tool_flow(self.config, self.action, call, key, driver or HookDriver(on_pending, wait=wait),
                                 approval_timeout=self.approval_timeout, span=span)
                result = yield from flow
            span.finish(result)
            return result

    def run(
        self,
        args: Mapping[str, Any] | str | None,
        context: CallContext | None = None,
        driver: ToolDriver | None = None,
        *,
        wait: bool = True,
        on_pending: OnPending | None = None,
    ) -> ToolResult:
        """Execute one call (blocking); the driver's methods run in the calling thread."""
        return self.client._drive(self._flow(args, context, driver, wait, on_pending))

    def reject(self, args: Mapping[str, Any] | str | None, context: CallContext | None = None,
               reason: str | None = None) -> ToolResult:
        """Reject a call a framework paused on, from outside the run: the call is re-sent exactly as the run
        would resume it (same arguments and context, so the same idempotency key), re-attaches to its
        pending approval, and the approval is withdrawn (``cancelled``: no reviewer can approve it any more).

        For frameworks whose own rejection never calls the tool again (OpenAI Agents SDK ``state.reject``,
        Pydantic AI ``ToolDenied``). Returns how the call ended, never to run again: REJECTED (withdrawn,
        ``reason`` in the text the model reads; or a reviewer rejected it first), TIMED_OUT (it expired
        first) or OK (a reviewer approved it first: it was performed, the stored result).

        Raises :class:`~ailink.ApprovalPendingError` (``code="approval_not_withdrawn"``) when the rejection
        did not take effect: the withdrawal failed or the gateway could not be reached, so the approval
        may still be pending and approved later.
        """
        return _final(self.client._drive(self._flow(args, context, _Rejecting(reason), True, None)))

    async def areject(self, args: Mapping[str, Any] | str | None, context: CallContext | None = None,
                      reason: str | None = None) -> ToolResult:
        """Async twin of :meth:`reject`."""
        return _final(await self.async_client._adrive(self._flow(args, context, _Rejecting(reason), True, None)))

    async def arun(
        self,
        args: Mapping[str, Any] | str | None,
        context: CallContext | None = None,
        driver: ToolDriver | None = None,
        *,
        wait: bool = True,
        on_pending: OnPending | None = None,
    ) -> ToolResult:
        """Execute one call (asyncio); awaitables the driver's methods return are awaited."""
        return await self.async_client._adrive(self._flow(args, context, driver, wait, on_pending))
