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
from typing_extensions import Unpack

from ailink.adapters import (
    ApprovalHandling,
    ApprovalPending,
    ApprovalResolved,
    GatewayTool,
    GatewayToolOptions,
    OpenAPIToolsOptions,
    PauseRequest,
    Rejection,
    ToolDriver,
    ToolResult,
    call_arguments,
    gateway_tool,
    gateway_tools,
)

__all__ = ["AIlinkToolMetadata", "AIlinkToolSpec", "LlamaIndexDriver", "OnApproval", "llamaindex_tool",
           "llamaindex_tools"]

OnApproval = Literal["wait", "event"]
_MARKER = "ailink_awaiting_approval_{}"


@dataclass
class AIlinkToolMetadata(ToolMetadata):
    """``ToolMetadata`` plus ``ailink``: the core's facts about the tool (for a generated tool, its
    operation and how the token's policies gate it, known before any call)."""

    ailink: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Call:
    """What the tool functions hand to the output callback: the core's result and the arguments."""

    result: ToolResult
    kwargs: dict[str, Any] = field(repr=False)  # LlamaIndex prints the raw output: keep model input out
    args: tuple[Any, ...] = field(default=(), repr=False)


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    """The fields the approval events share, from an event's or a pause request's ``to_dict()``."""
    return {"tool_name": data["tool"], "approval_id": data["approval_id"], "summary": data.get("summary") or {},
            "policy": data.get("policy"), "expires_at": data.get("expires_at")}


class LlamaIndexDriver(ToolDriver):
    """Approvals the LlamaIndex way: instrumentation events, workflow stream events and, with a
    workflow ``Context`` in event mode, ``ctx.wait_for_event`` (the step replays when the response
    arrives; a ``ctx.store`` marker tells the replay it resumes, and it then waits if still pending;
    a response with ``reject=True`` withdraws the approval)."""

    still_pending = "wait"

    def __init__(self, ctx: Context | None, approvals: ApprovalHandling) -> None:
        self.ctx = ctx
        self.approvals = approvals

    def emit(self, event: ApprovalPending | ApprovalResolved) -> None:
        data = event.to_dict()
        if isinstance(event, ApprovalResolved):
            dispatcher.event(AIlinkApprovalResolvedEvent(tool_name=event.tool, approval_id=event.approval_id,
                                                         outcome=data["status"], status_code=data["status_code"]))
            return
        dispatcher.event(AIlinkApprovalPendingEvent(**_fields(data)))
        if self.ctx is not None and self.approvals == "wait":
            self.ctx.write_event_to_stream(AIlinkApprovalPending(message=data["message"], **_fields(data)))

    async def pause(self, request: PauseRequest) -> Any:
        assert self.ctx is not None  # only pauses with a workflow Context
        marker = _MARKER.format(request.approval_id)
        await self.ctx.store.set(marker, True)
        response = await self.ctx.wait_for_event(
            AIlinkApprovalResponse,
            waiter_event=AIlinkApprovalRequired(message=request.message, **_fields(request.to_dict())),
            waiter_id=request.approval_id,
            requirements={"approval_id": request.approval_id},
        )
        await self.ctx.store.set(marker, False)
        return Rejection(response.note) if response.reject else response

    async def resumed(self, approval_id: str) -> bool:
        assert self.ctx is not None
        return bool(await self.ctx.store.get(_MARKER.format(approval_id), default=False))


def _workflow_context(ctx: Any, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The workflow ``Context`` (or None), and the arguments: a ``ctx`` that is not a ``Context`` came
    from the model, so it is an argument (which the core refuses), never the workflow's context."""
    if ctx is None or isinstance(ctx, Context):
        return ctx, kwargs
    return None, {**kwargs, "ctx": ctx}


class _GatewayFunctions:
    """The sync and async functions of one gateway tool: LlamaIndex context in, a ``ToolOutput`` out."""

    def __init__(self, gateway: GatewayTool, on_approval: OnApproval) -> None:
        self.gateway = gateway
        self.on_approval = on_approval
        self.name = gateway.action.name

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

    def call(self, *args: Any, ctx: Context, **kwargs: Any) -> _Call:
        """Blocking call. With ``on_approval="event"`` a pending approval is returned, not awaited
        (a sync function cannot pause a workflow); calling again re-attaches to it."""
        ctx, kwargs = _workflow_context(ctx, kwargs)
        driver = LlamaIndexDriver(ctx, "wait" if self.on_approval == "wait" else "return")
        result = self.gateway.run(call_arguments(args, kwargs), call_context(self.name), driver)
        return _Call(result, kwargs, args)

    async def acall(self, *args: Any, ctx: Context, **kwargs: Any) -> _Call:
        """Async call; with ``on_approval="event"`` and a workflow ``Context``, a pending approval
        pauses the workflow (``ctx.wait_for_event``) until an :class:`AIlinkApprovalResponse` arrives."""
        ctx, kwargs = _workflow_context(ctx, kwargs)
        event_mode: ApprovalHandling = "pause" if ctx is not None else "return"
        driver = LlamaIndexDriver(ctx, "wait" if self.on_approval == "wait" else event_mode)
        result = await self.gateway.arun(call_arguments(args, kwargs), call_context(self.name), driver)
        return _Call(result, kwargs, args)


def llamaindex_tool(*, on_approval: OnApproval = "wait", **options: Unpack[GatewayToolOptions]) -> FunctionTool:
    """An API behind the AIlink gateway as a LlamaIndex ``FunctionTool``.

    ``options`` are :class:`ailink.adapters.GatewayToolOptions`. The model fills in
    ``{method, path, query?, body?}`` (the schema of the core's tool action); the tool has a sync
    ``fn`` and an async ``async_fn`` (which receives the workflow ``Context`` from workflow agents).
    Every outcome but success (invalid arguments, policy denials, rejections, approval timeouts,
    outcome unknown, gateway or network failures) comes back as readable text with
    ``is_error=True``, never as an exception; ``ToolOutput.raw_output`` holds the details.

    ``on_approval="wait"`` (default): a call that needs approval waits for the decision
    (``approval_timeout``), writing an ``AIlinkApprovalPending`` event to the workflow stream.
    ``on_approval="event"``: the workflow pauses on ``ctx.wait_for_event`` and publishes an
    ``AIlinkApprovalRequired`` event; send ``AIlinkApprovalResponse(approval_id=...)`` to resume, or
    ``AIlinkApprovalResponse(approval_id=..., reject=True, note=...)`` to reject (the approval is withdrawn).

    Idempotency: the key is derived from (session, the agent's tool-call id, tool name,
    arguments), the fallback session (workflow run id) left out when there is a tool-call id, so
    a replayed or resumed step re-attaches to its approval; direct calls have no call id, so an
    identical action repeated within one session returns the stored result. Pass
    ``idempotency_key`` in the arguments to repeat an action deliberately.
    """
    _check_on_approval(on_approval)
    return _function_tool(gateway_tool(**options), on_approval)


def llamaindex_tools(*, on_approval: OnApproval = "wait", **options: Unpack[OpenAPIToolsOptions]) -> "AIlinkToolSpec":
    """One LlamaIndex tool per operation of an OpenAPI document, as a ``BaseToolSpec`` (``to_tool_list()``).

    ``options`` are :class:`ailink.adapters.OpenAPIToolsOptions` (``openapi``, ``token``, filters,
    ``policies``/``admin``, ...); needs ``ailink-sdk[openapi]``. Each tool's ``fn_schema`` carries
    the operation's JSON Schema, its description says when the token's policies ask a human first,
    and ``tool.metadata.ailink`` holds the same facts. Approvals, results and idempotency are those
    of :func:`llamaindex_tool` (``on_approval="event"`` pauses a workflow).
    """
    _check_on_approval(on_approval)
    return AIlinkToolSpec.from_tools([_function_tool(g, on_approval) for g in gateway_tools(**options)])


def _check_on_approval(on_approval: str) -> None:
    if on_approval not in ("wait", "event"):
        raise ValueError("on_approval must be 'wait' or 'event'")


def _function_tool(gateway: GatewayTool, on_approval: OnApproval) -> FunctionTool:
    track_root_spans()
    functions = _GatewayFunctions(gateway, on_approval)
    fields = gateway.tool_fields()
    return FunctionTool.from_defaults(
        fn=functions.call,
        async_fn=functions.acall,
        tool_metadata=AIlinkToolMetadata(name=fields["name"], description=fields["description"],
                                         fn_schema=fields["args_schema"], ailink=gateway.tool_metadata()),
        callback=functions.to_output,
        async_callback=functions.ato_output,
        # Direct calls (``tool(method=..., path=...)``) run without a workflow Context.
        partial_params={"ctx": None},
    )


class AIlinkToolSpec(BaseToolSpec):
    """A ``BaseToolSpec`` of AIlink gateway tools (``to_tool_list()``).

    Built with the arguments of :func:`llamaindex_tool` it exposes that one generic tool (``name``
    defaults to ``"ailink_api"``); :func:`llamaindex_tools` builds one with a tool per operation
    of an OpenAPI document.
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
        self.tools = [self.tool]
        self.spec_functions = [name]

    @classmethod
    def from_tools(cls, tools: Sequence[FunctionTool]) -> "AIlinkToolSpec":
        """A spec of ready tools (what :func:`llamaindex_tools` returns)."""
        spec = cls.__new__(cls)
        spec.tools = list(tools)
        spec.tool = spec.tools[0] if spec.tools else None  # type: ignore[assignment]
        spec.spec_functions = [t.metadata.get_name() for t in spec.tools]
        return spec

    def to_tool_list(
        self,
        spec_functions: list[SPEC_FUNCTION_TYPE] | None = None,
        func_to_metadata_mapping: dict[str, ToolMetadata] | None = None,
    ) -> list[FunctionTool]:
        """The spec's tools (filtered by ``spec_functions`` names when given)."""
        wanted = {f if isinstance(f, str) else f[0] for f in spec_functions or self.spec_functions}
        return [tool for tool in self.tools if tool.metadata.name in wanted]

    async def to_tool_list_async(
        self,
        spec_functions: list[SPEC_FUNCTION_TYPE] | None = None,
        func_to_metadata_mapping: dict[str, ToolMetadata] | None = None,
    ) -> list[FunctionTool]:
        return self.to_tool_list(spec_functions, func_to_metadata_mapping)
