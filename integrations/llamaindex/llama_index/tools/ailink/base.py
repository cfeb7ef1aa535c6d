"""The AIlink gateway tool for LlamaIndex: a ``FunctionTool`` (and a ``BaseToolSpec``) over ``ailink.GatewayTool``."""

# No ``from __future__ import annotations`` in this module: ``FunctionTool`` finds the workflow
# ``Context`` parameter by comparing annotation objects, which string annotations would defeat.

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from llama_index.core.tools import FunctionTool, ToolMetadata, ToolOutput
from llama_index.core.tools.tool_spec.base import SPEC_FUNCTION_TYPE, BaseToolSpec
from llama_index.core.workflow import Context
from llama_index.tools.ailink._events import (
    AIlinkApprovalPending,
    AIlinkApprovalPendingEvent,
    AIlinkApprovalRequired,
    AIlinkApprovalResolvedEvent,
    AIlinkApprovalResponse,
    dispatcher,
)
from llama_index.tools.ailink._session import call_context, track_root_spans

import ailink
from ailink import GatewayTool, PendingApproval, ToolOutcome, ToolResult

__all__ = ["AIlinkToolSpec", "OnApproval", "llamaindex_tool"]

OnApproval = Literal["wait", "event"]
_MARKER = "ailink_awaiting_approval_{}"


@dataclass(frozen=True)
class _Call:
    """What the tool functions hand to the output callback: the core's result and the arguments."""

    result: ToolResult
    kwargs: dict[str, Any] = field(repr=False)  # LlamaIndex prints the raw output: keep model input out
    args: tuple[Any, ...] = field(default=(), repr=False)


def _arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The raw arguments of one call: the keywords, or the positional value(s) a caller passed
    (``tool.call('{"method": ...}')``), which the core parses or refuses as not an object."""
    if not args:
        return kwargs
    return args[0] if len(args) == 1 and not kwargs else [*args, kwargs]


def _pending_fields(tool_name: str, pending: PendingApproval) -> dict[str, Any]:
    data = pending.to_dict()
    return {
        "tool_name": tool_name,
        "approval_id": pending.approval_id,
        "summary": data["summary"],
        "policy": pending.policy,
        "expires_at": data["expires_at"],
    }


class _GatewayFunctions:
    """The sync and async functions of one gateway tool (one core call each; no logic of their own
    beyond translating LlamaIndex context and approval events)."""

    def __init__(self, gateway: GatewayTool, on_approval: OnApproval) -> None:
        self.gateway = gateway
        self.on_approval = on_approval
        self.name = gateway.action.name

    # -- shared by both paths ----------------------------------------------------------------
    def _announce(self, pending: PendingApproval, ctx: Context | None) -> None:
        """A wait started: instrumentation event, and a stream event when a workflow runs us."""
        fields = _pending_fields(self.name, pending)
        dispatcher.event(AIlinkApprovalPendingEvent(**fields))
        if ctx is not None and self.on_approval == "wait":
            ctx.write_event_to_stream(AIlinkApprovalPending(message=pending.describe(), **fields))

    def _settled(self, approval_id: str, result: ToolResult) -> None:
        dispatcher.event(
            AIlinkApprovalResolvedEvent(
                tool_name=self.name,
                approval_id=approval_id,
                outcome=result.outcome.value,
                status_code=result.status_code,
            )
        )

    def _finish(self, seen: list[PendingApproval], result: ToolResult) -> ToolResult:
        if seen and result.outcome is not ToolOutcome.PENDING:
            self._settled(seen[0].approval_id, result)
        elif result.pending is not None:
            self._announce(result.pending, None)
        return result

    def _hook(self, ctx: Context | None, seen: list[PendingApproval]) -> Any:
        def on_pending(pending: PendingApproval) -> None:
            seen.append(pending)
            self._announce(pending, ctx)

        return on_pending

    def to_output(self, call: _Call) -> ToolOutput:
        """The ``ToolOutput``: the core's text for the model, its artifact in ``raw_output``."""
        raw_input: dict[str, Any] = {"kwargs": call.kwargs}
        if call.args:
            raw_input["args"] = list(call.args)
        return ToolOutput(
            content=call.result.content,
            tool_name=self.name,
            raw_input=raw_input,
            raw_output=call.result.artifact,
            is_error=call.result.is_error,
        )

    async def ato_output(self, call: _Call) -> ToolOutput:
        return self.to_output(call)

    # -- the tool functions ----------------------------------------------------------------------
    def call(self, *args: Any, ctx: Context, **kwargs: Any) -> _Call:
        """Blocking call. With ``on_approval="event"`` a pending approval is returned, not awaited
        (a sync function cannot pause a workflow); calling again re-attaches to it."""
        seen: list[PendingApproval] = []
        wait = self.on_approval == "wait"
        arguments = _arguments(args, kwargs)
        result = self.gateway.run(arguments, call_context(self.name), wait=wait, on_pending=self._hook(ctx, seen))
        return _Call(self._finish(seen, result), kwargs, args)

    async def acall(self, *args: Any, ctx: Context, **kwargs: Any) -> _Call:
        """Async call; with ``on_approval="event"`` and a workflow ``Context``, a pending approval
        pauses the workflow (``ctx.wait_for_event``) until an :class:`AIlinkApprovalResponse` arrives."""
        context = call_context(self.name)
        arguments = _arguments(args, kwargs)
        seen: list[PendingApproval] = []
        if self.on_approval == "wait" or ctx is None:
            wait = self.on_approval == "wait"
            result = await self.gateway.arun(arguments, context, wait=wait, on_pending=self._hook(ctx, seen))
            return _Call(self._finish(seen, result), kwargs, args)

        # Event mode. The step replays from the top when the response event arrives, so this
        # first call re-sends with the same idempotency key and re-attaches to the approval.
        result = await self.gateway.arun(arguments, context, wait=False)
        approval_id = result.approval_id
        if approval_id is None:
            return _Call(result, kwargs, args)
        marker = _MARKER.format(approval_id)
        paused_before = bool(await ctx.store.get(marker, default=False))
        if result.outcome is ToolOutcome.PENDING or paused_before:
            if result.pending is not None and not paused_before:
                self._announce(result.pending, ctx)
                await ctx.store.set(marker, True)
            fields = (
                _pending_fields(self.name, result.pending)
                if result.pending is not None
                else {"tool_name": self.name, "approval_id": approval_id}
            )
            await ctx.wait_for_event(
                AIlinkApprovalResponse,
                waiter_event=AIlinkApprovalRequired(message=result.content, **fields),
                waiter_id=approval_id,
                requirements={"approval_id": approval_id},
            )
            if result.outcome is ToolOutcome.PENDING:
                # Resumed while the gateway still says pending: wait within the approval timeout.
                result = await self.gateway.arun(arguments, context)
            self._settled(approval_id, result)
            await ctx.store.set(marker, False)
        return _Call(result, kwargs, args)


def llamaindex_tool(
    *,
    name: str,
    description: str,
    token: str | None = None,
    methods: Sequence[str] = ("GET",),
    gateway_url: str | None = None,
    agent_name: str | None = None,
    base_path: str = "/",
    allowed_paths: Sequence[str] | None = None,
    on_approval: OnApproval = "wait",
    approval_timeout: float | None = None,
    client: ailink.AIlinkClient | ailink.AsyncClient | None = None,
    **client_options: Any,
) -> FunctionTool:
    """An API behind the AIlink gateway as a LlamaIndex ``FunctionTool``.

    The model fills in ``{method, path, query?, body?}`` (the schema of the core's tool action);
    the tool has a sync ``fn`` and an async ``async_fn`` (which receives the workflow ``Context``
    from workflow agents). Every outcome but success (invalid arguments, policy denials,
    rejections, approval timeouts, outcome unknown, gateway or network failures) comes back as
    readable text with ``is_error=True``, never as an exception; ``ToolOutput.raw_output`` holds
    the details.

    ``on_approval="wait"`` (default): a call that needs approval waits for the decision
    (``approval_timeout``), writing an ``AIlinkApprovalPending`` event to the workflow stream.
    ``on_approval="event"``: the workflow pauses on ``ctx.wait_for_event`` and publishes an
    ``AIlinkApprovalRequired`` event; send ``AIlinkApprovalResponse(approval_id=...)`` to resume.

    Idempotency: the key is derived from (session, the agent's tool-call id, tool name,
    arguments), the fallback session (workflow run id) left out when there is a tool-call id, so
    a replayed or resumed step re-attaches to its approval; direct calls have no call id, so an
    identical action repeated within one session returns the stored result. Pass
    ``idempotency_key`` in the arguments to repeat an action deliberately. Other keyword
    arguments go to ``ailink.AIlinkClient``.
    """
    if on_approval not in ("wait", "event"):
        raise ValueError("on_approval must be 'wait' or 'event'")
    gateway = ailink.gateway_tool(
        name=name,
        description=description,
        token=token,
        methods=methods,
        gateway_url=gateway_url,
        agent_name=agent_name,
        base_path=base_path,
        allowed_paths=allowed_paths,
        approval_timeout=approval_timeout,
        client=client,
        **client_options,
    )
    track_root_spans()
    functions = _GatewayFunctions(gateway, on_approval)
    return FunctionTool.from_defaults(
        fn=functions.call,
        async_fn=functions.acall,
        tool_metadata=ToolMetadata(name=name, description=description, fn_schema=gateway.action.args_model),
        callback=functions.to_output,
        async_callback=functions.ato_output,
        # Direct calls (``tool(method=..., path=...)``) run without a workflow Context.
        partial_params={"ctx": None},
    )


class AIlinkToolSpec(BaseToolSpec):
    """A ``BaseToolSpec`` exposing one AIlink gateway tool (``to_tool_list()``).

    Takes the arguments of :func:`llamaindex_tool`; ``name`` defaults to ``"ailink_api"``.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        name: str = "ailink_api",
        description: str = "Call an HTTP API through the AIlink gateway (policies and human approval apply).",
        methods: Sequence[str] = ("GET",),
        **options: Any,
    ) -> None:
        self.tool = llamaindex_tool(token=token, name=name, description=description, methods=methods, **options)
        self.spec_functions = [name]

    def to_tool_list(
        self,
        spec_functions: list[SPEC_FUNCTION_TYPE] | None = None,
        func_to_metadata_mapping: dict[str, ToolMetadata] | None = None,
    ) -> list[FunctionTool]:
        """The spec's tools (filtered by ``spec_functions`` names when given)."""
        wanted = {f if isinstance(f, str) else f[0] for f in spec_functions or self.spec_functions}
        return [self.tool] if self.tool.metadata.name in wanted else []

    async def to_tool_list_async(
        self,
        spec_functions: list[SPEC_FUNCTION_TYPE] | None = None,
        func_to_metadata_mapping: dict[str, ToolMetadata] | None = None,
    ) -> list[FunctionTool]:
        return self.to_tool_list(spec_functions, func_to_metadata_mapping)
