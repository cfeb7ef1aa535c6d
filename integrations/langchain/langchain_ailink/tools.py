"""A gateway-proxied API as a LangChain tool: a thin ``BaseTool`` around ``ailink.GatewayTool``."""

from __future__ import annotations

import contextvars
import json
import warnings
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForToolRun,
    CallbackManagerForToolRun,
    adispatch_custom_event,
    dispatch_custom_event,
)
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import patch_config
from langchain_core.tools import BaseTool, ToolException
from pydantic import ConfigDict, Field, model_validator

from ailink import (
    AIlinkClient,
    AsyncClient,
    CallContext,
    GatewayTool,
    InvalidToolArgumentsError,
    PendingApproval,
    ToolOutcome,
    ToolResult,
)
from ailink import gateway_tool as _gateway_tool
from langchain_ailink._context import RunScope, resolve_scope

__all__ = [
    "APPROVAL_PENDING_EVENT",
    "APPROVAL_RESOLVED_EVENT",
    "AIlinkTool",
    "AIlinkToolError",
    "langchain_tool",
]

#: Custom event dispatched (and written to the LangGraph stream) when a call waits for a human.
APPROVAL_PENDING_EVENT = "ailink.approval.pending"
#: Custom event dispatched when that wait ends (approved, rejected, timed out).
APPROVAL_RESOLVED_EVENT = "ailink.approval.resolved"
#: ``configurable`` key for an explicit idempotency key (wins over the derived one).
IDEMPOTENCY_CONFIG_KEY = "ailink_idempotency_key"

OnApproval = Literal["wait", "interrupt"]
_SCRATCHPAD_KEY = "__pregel_scratchpad"  # LangGraph's marker of "running inside a graph task"
_CHECKPOINTER_KEY = "__pregel_checkpointer"
#: Deeper arguments are refused before LangChain sees them (its input logging recurses).
MAX_ARGUMENT_DEPTH = 100


@dataclass(frozen=True)
class _Invocation:
    """The raw input of one ``invoke``: captured before LangChain validates it."""

    tool_call_id: str | None
    raw_args: Any


# Set by AIlinkTool.invoke/ainvoke; the tool body runs in a copy of the caller's context, so
# each of several parallel tool calls sees its own value.
_invocation: contextvars.ContextVar[_Invocation | None] = contextvars.ContextVar(
    "langchain_ailink_invocation", default=None
)


class AIlinkToolError(ToolException):
    """A call that did not succeed (denied, rejected, timed out, invalid, outcome unknown, failed).

    Raised inside the tool so LangChain turns it into a ``ToolMessage(status="error")``; the
    :class:`ailink.ToolResult` stays on ``.result`` (its artifact goes on the message).
    """

    def __init__(self, result: ToolResult, tool_call_id: str | None = None, tool_name: str | None = None) -> None:
        super().__init__(result.content)
        self.result = result
        self.tool_call_id = tool_call_id
        self.tool_name = tool_name


def tool_error_message(error: ToolException) -> Any:
    """``handle_tool_error`` of :class:`AIlinkTool`: readable text, plus the artifact when possible.

    With a ToolCall input the answer is a ``ToolMessage(status="error")`` that keeps the call's
    artifact (LangChain passes a returned ``ToolMessage`` through unchanged); with plain
    arguments it is the text alone.
    """
    if isinstance(error, AIlinkToolError) and error.tool_call_id is not None:
        return ToolMessage(
            content=error.result.content,
            artifact=error.result.artifact,
            tool_call_id=error.tool_call_id,
            name=error.tool_name,
            status="error",
        )
    return error.args[0] if error.args else "AIlink tool call failed"


@dataclass
class _Emit:
    name: str
    data: dict[str, Any]


@dataclass
class _Send:
    wait: bool


@dataclass
class _Interrupt:
    payload: dict[str, Any]


_Step = _Emit | _Send | _Interrupt


@dataclass
class _Call:
    """Everything one execution of the tool body needs (shared by the sync and async drivers)."""

    args: Mapping[str, Any]
    context: CallContext
    scope: RunScope
    tool_name: str
    child_config: RunnableConfig | None
    interrupt: bool
    in_graph: bool
    tool_call_id: str | None
    announced: list[PendingApproval] = field(default_factory=list)

    def event(self, pending: PendingApproval | None = None, **extra: Any) -> dict[str, Any]:
        data: dict[str, Any] = {
            "tool": self.tool_name,
            "tool_call_id": self.tool_call_id,
            "session_id": self.scope.session_id,
        }
        if pending is not None:
            data.update(pending.to_dict())
            data["message"] = pending.describe()
        data.update(extra)
        return data


class AIlinkTool(BaseTool):
    """A LangChain tool for one API behind the AIlink gateway (wraps :class:`ailink.GatewayTool`).

    The model fills in ``method``, ``path``, ``query`` and ``body``; the core validates, sends,
    waits for approvals and maps the outcome. Success returns ``(content, artifact)``; every
    other outcome (denied, rejected, timed out, invalid arguments, outcome unknown, gateway
    unreachable or refusing the token) becomes a ``ToolMessage(status="error")`` the model can
    read, so a failing gateway never ends the agent run. ``on_approval="interrupt"`` pauses a
    LangGraph graph (with a checkpointer) with ``interrupt()`` instead of waiting in the tool.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: Any = tool_error_message
    handle_validation_error: Any = None
    gateway: GatewayTool = Field(exclude=True)
    """The core tool action this tool wraps."""
    on_approval: OnApproval = "wait"
    """``"wait"``: block until a human decides; ``"interrupt"``: LangGraph ``interrupt()``."""

    @model_validator(mode="before")
    @classmethod
    def _from_gateway(cls, values: Any) -> Any:
        if isinstance(values, dict) and isinstance(values.get("gateway"), GatewayTool):
            action = values["gateway"].action
            values = {
                "name": action.name,
                "description": action.description,
                "args_schema": action.args_model,
                **values,
            }
        return values

    @model_validator(mode="after")
    def _check(self) -> AIlinkTool:
        if self.on_approval not in ("wait", "interrupt"):
            raise ValueError("on_approval must be 'wait' or 'interrupt'")
        if self.handle_validation_error is None:
            self.handle_validation_error = self._invalid_arguments_message
        return self

    def __repr__(self) -> str:
        return f"AIlinkTool(name={self.name!r}, gateway={self.gateway!r}, on_approval={self.on_approval!r})"

    # -- capture the ToolCall id (it is not passed to _run) ------------------------------------
    def invoke(self, input: str | dict[str, Any] | Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Run the tool on a ToolCall or plain arguments (see ``BaseTool.invoke``)."""
        invocation, input = _capture(input)
        token = _invocation.set(invocation)
        try:
            return super().invoke(input, config, **kwargs)
        finally:
            _invocation.reset(token)

    async def ainvoke(
        self, input: str | dict[str, Any] | Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Any:
        """Async twin of :meth:`invoke`."""
        invocation, input = _capture(input)
        token = _invocation.set(invocation)
        try:
            return await super().ainvoke(input, config, **kwargs)
        finally:
            _invocation.reset(token)

    # -- the tool body -------------------------------------------------------------------------
    def _run(
        self,
        config: RunnableConfig,
        run_manager: CallbackManagerForToolRun | None = None,
        **kwargs: Any,
    ) -> tuple[str, dict[str, Any]]:
        call = self._call(kwargs, run_manager, config)
        steps = self._steps(call)
        value: Any = None
        while True:
            try:
                step = steps.send(value)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            value = None
            if isinstance(step, _Send):
                value = self.gateway.run(
                    call.args, call.context, wait=step.wait,
                    on_pending=lambda p: self._emit(call, self._pending_step(call, p)),
                )
            elif isinstance(step, _Emit):
                self._emit(call, step)
            else:
                value = _interrupt(step.payload)

    async def _arun(
        self,
        config: RunnableConfig,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
        **kwargs: Any,
    ) -> tuple[str, dict[str, Any]]:
        call = self._call(kwargs, run_manager, config)

        async def on_pending(pending: PendingApproval) -> None:
            await self._aemit(call, self._pending_step(call, pending))

        steps = self._steps(call)
        value: Any = None
        while True:
            try:
                step = steps.send(value)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            value = None
            if isinstance(step, _Send):
                value = await self.gateway.arun(call.args, call.context, wait=step.wait, on_pending=on_pending)
            elif isinstance(step, _Emit):
                await self._aemit(call, step)
            else:
                value = _interrupt(step.payload)

    # -- one flow for both drivers -------------------------------------------------------------
    def _steps(self, call: _Call) -> Generator[_Step, Any, tuple[str, dict[str, Any]]]:
        """What the tool does, as steps the sync and async drivers execute."""
        if call.interrupt:
            result: ToolResult = yield _Send(wait=False)
            while result.outcome is ToolOutcome.PENDING and result.pending is not None:
                # First run: interrupt() pauses the graph. On resume the node re-runs from the
                # top, re-sends with the same key, and interrupt() returns the resume value while
                # the approval is still pending: send again, and pause again if still pending.
                yield self._pending_step(call, result.pending)
                yield _Interrupt(self._interrupt_payload(call, result))
                result = yield _Send(wait=False)
            if result.approval_id is not None:
                yield self._resolved_step(call, result)
        else:
            result = yield _Send(wait=True)
            if call.announced:
                yield self._resolved_step(call, result)
        return self._output(call, result)

    def _pending_step(self, call: _Call, pending: PendingApproval) -> _Emit:
        call.announced.append(pending)
        return _Emit(APPROVAL_PENDING_EVENT, call.event(pending))

    def _resolved_step(self, call: _Call, result: ToolResult) -> _Emit:
        approval_id = result.approval_id or (call.announced[-1].approval_id if call.announced else None)
        return _Emit(
            APPROVAL_RESOLVED_EVENT,
            call.event(
                approval_id=approval_id,
                status=result.outcome.value,
                idempotency_key=result.idempotency_key,
                request_id=result.request_id,
            ),
        )

    def _emit(self, call: _Call, step: _Emit) -> None:
        """Dispatch ``step`` as a LangChain custom event and write it to the LangGraph stream."""
        if call.child_config is not None:
            dispatch_custom_event(step.name, step.data, config=call.child_config)
        self._write_stream(call, step)

    async def _aemit(self, call: _Call, step: _Emit) -> None:
        """The async twin of :meth:`_emit` (``adispatch_custom_event``)."""
        if call.child_config is not None:
            await adispatch_custom_event(step.name, step.data, config=call.child_config)
        self._write_stream(call, step)

    @staticmethod
    def _write_stream(call: _Call, step: _Emit) -> None:
        if not call.in_graph:
            return
        from langgraph.config import get_stream_writer

        try:
            writer = get_stream_writer()
        except (KeyError, RuntimeError):  # not a LangGraph task after all
            return
        writer({"type": step.name, **step.data})

    @staticmethod
    def _interrupt_payload(call: _Call, result: ToolResult) -> dict[str, Any]:
        assert result.pending is not None
        return {
            "type": "ailink.approval",
            **call.event(result.pending),
            "idempotency_key": result.idempotency_key or result.pending.idempotency_key,
        }

    def _output(self, call: _Call, result: ToolResult) -> tuple[str, dict[str, Any]]:
        if result.outcome is ToolOutcome.OK:
            return result.content, result.artifact
        raise AIlinkToolError(result, call.tool_call_id, self.name)

    def _call(
        self,
        kwargs: dict[str, Any],
        run_manager: CallbackManagerForToolRun | AsyncCallbackManagerForToolRun | None,
        config: RunnableConfig,
    ) -> _Call:
        """Translate the LangChain context of this execution into a :class:`ailink.CallContext`."""
        invocation = _invocation.get()
        tool_call_id = invocation.tool_call_id if invocation is not None else None
        configurable: Mapping[str, Any] = config.get("configurable") or {}
        metadata: Mapping[str, Any] = run_manager.metadata if run_manager is not None else config.get("metadata") or {}
        in_graph = _SCRATCHPAD_KEY in configurable
        call_id = tool_call_id
        if run_manager is not None:
            scope = resolve_scope(
                run_id=run_manager.run_id,
                parent_run_id=run_manager.parent_run_id,
                metadata=metadata,
                handlers=run_manager.handlers,
                configurable=configurable,
                extra={"tool": self.name, "tool_call_id": tool_call_id},
            )
            child_config: RunnableConfig | None = patch_config(config, callbacks=run_manager.get_child())
            if call_id is None:
                # no ToolCall: a graph task's checkpoint namespace survives resume; else the run id
                call_id = str(metadata.get("checkpoint_ns") or "") if in_graph else ""
                call_id = call_id or str(run_manager.run_id)
        else:  # pragma: no cover - BaseTool always passes a run manager
            import uuid

            run_id = uuid.uuid4()
            scope = resolve_scope(run_id=run_id, parent_run_id=None, metadata=metadata, configurable=configurable)
            child_config = None
            call_id = call_id or str(run_id)
        context = CallContext(
            session_id=scope.session_id,
            parent_span_id=scope.span_id,
            call_id=call_id,
            properties=scope.properties,
            idempotency_key=configurable.get(IDEMPOTENCY_CONFIG_KEY),
            user_id=scope.user_id,
            # a root run id changes per invocation: the key then rests on the call id alone, so
            # re-invoking the same ToolCall re-attaches with or without session config
            stable_session=scope.session_chosen,
        )
        interrupt = self.on_approval == "interrupt"
        if interrupt and not (in_graph and configurable.get(_CHECKPOINTER_KEY) is not None):
            warnings.warn(
                f"AIlink tool {self.name!r}: on_approval='interrupt' needs a LangGraph graph with a "
                "checkpointer; waiting for the approval in the tool instead",
                RuntimeWarning,
                stacklevel=2,
            )
            interrupt = False
        args = {k: v for k, v in kwargs.items() if v is not None}
        return _Call(args, context, scope, self.name, child_config, interrupt, in_graph, tool_call_id)

    def _invalid_arguments_message(self, error: Exception) -> Any:
        """``handle_validation_error``: the core's explanation of what is wrong with the arguments."""
        invocation = _invocation.get()
        raw = invocation.raw_args if invocation is not None else None
        invalid: ToolResult | None
        if _too_deep(raw):
            depth = InvalidToolArgumentsError(f"arguments are nested more than {MAX_ARGUMENT_DEPTH} levels deep")
            invalid = _refusal(self.gateway, depth)
        else:
            invalid = self.gateway.prepare(raw if isinstance(raw, (dict, str)) else None)[2]
        if invalid is None:  # LangChain refused what the core accepts: still explain
            text = f"Invalid arguments for tool '{self.name}': {error}. Nothing was sent."
            return text
        tool_call_id = invocation.tool_call_id if invocation is not None else None
        return tool_error_message(AIlinkToolError(invalid, tool_call_id, self.name))


def _capture(input: Any) -> tuple[_Invocation, Any]:
    """What the model sent, and the input to give LangChain.

    A ToolCall whose ``args`` are a JSON text of an object is read as that object. Arguments
    LangChain cannot handle (not an object, or nested deeper than :data:`MAX_ARGUMENT_DEPTH`:
    it copies and logs them before validating) are replaced by ``{}``, so its validation fails
    and :meth:`AIlinkTool._invalid_arguments_message` explains what was wrong with the original.
    """
    if isinstance(input, dict) and input.get("type") == "tool_call":
        args = input.get("args")
        if isinstance(args, str):
            try:
                parsed = json.loads(args)
            except ValueError:
                parsed = None
            args = parsed if isinstance(parsed, dict) else args
        if not isinstance(args, dict) or _too_deep(args):
            return _Invocation(input.get("id"), args), {**input, "args": {}}
        return _Invocation(input.get("id"), args), {**input, "args": args}
    if _too_deep(input):
        return _Invocation(None, input), {}
    return _Invocation(None, input), input


def _too_deep(value: Any) -> bool:
    """Whether ``value`` nests dicts/lists more than :data:`MAX_ARGUMENT_DEPTH` levels (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth >= MAX_ARGUMENT_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _refusal(gateway: GatewayTool, error: InvalidToolArgumentsError) -> ToolResult:
    """The invalid-arguments result for ``error`` (nothing was sent)."""
    return ToolResult(
        ToolOutcome.INVALID_ARGUMENTS,
        f"Invalid arguments for tool '{gateway.action.name}': {error}. Nothing was sent.",
        reason=str(error),
    )


def _interrupt(payload: dict[str, Any]) -> Any:
    from langgraph.types import interrupt

    return interrupt(payload)


def langchain_tool(
    *,
    token: str | None = None,
    name: str,
    description: str,
    methods: Sequence[str] = ("GET",),
    gateway_url: str | None = None,
    agent_name: str | None = None,
    base_path: str = "/",
    allowed_paths: Sequence[str] | None = None,
    on_approval: OnApproval = "wait",
    approval_timeout: float | None = None,
    client: AIlinkClient | AsyncClient | None = None,
    **client_options: Any,
) -> AIlinkTool:
    """A LangChain tool for the API behind ``token`` (the one-liner of the AIlink docs).

    ``methods``/``base_path``/``allowed_paths`` bound what the model may call;
    ``on_approval="interrupt"`` pauses a LangGraph graph instead of waiting in the tool;
    other options (``client=``, ``timeout=``, ``retries=``, ``max_response_chars=``, ...)
    go to :func:`ailink.gateway_tool`.
    """
    gateway = _gateway_tool(
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
    return AIlinkTool(
        name=gateway.action.name,
        description=gateway.action.description,
        args_schema=gateway.action.args_model,
        gateway=gateway,
        on_approval=on_approval,
    )

