"""A gateway-proxied API as a LangChain tool: a thin ``BaseTool`` around ``ailink.adapters.GatewayTool``.

Translation only: the LangChain run → :class:`~ailink.adapters.CallContext`, approvals → custom
events and LangGraph ``interrupt()`` (:class:`LangChainDriver`), the core's result → the tool's
``(content, artifact)`` or an error ``ToolMessage``. Sending, waiting, pausing and re-attaching
after a resume are the core's tool flow.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForToolRun,
    CallbackManagerForToolRun,
    adispatch_custom_event,
    dispatch_custom_event,
)
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import patch_config, var_child_runnable_config
from langchain_core.tools import BaseTool, ToolException
from pydantic import ConfigDict, Field, model_validator
from typing_extensions import Unpack

from ailink.adapters import (
    ApprovalHandling,
    ApprovalPending,
    ApprovalResolved,
    CallContext,
    GatewayTool,
    GatewayToolOptions,
    OpenAPIToolsOptions,
    PauseRequest,
    Rejection,
    ToolDriver,
    ToolResult,
    gateway_tool,
    gateway_tools,
    nests_deeper_than,
)
from langchain_ailink._context import resolve_scope

__all__ = [
    "APPROVAL_PENDING_EVENT",
    "APPROVAL_RESOLVED_EVENT",
    "AIlinkTool",
    "AIlinkToolError",
    "LangChainDriver",
    "langchain_tool",
    "langchain_tools",
]

#: Custom event dispatched (and written to the LangGraph stream) when a call waits for a human.
APPROVAL_PENDING_EVENT = ApprovalPending.name
#: Custom event dispatched when that wait ends (approved, rejected, timed out).
APPROVAL_RESOLVED_EVENT = ApprovalResolved.name
#: ``configurable`` key for an explicit idempotency key (wins over the derived one).
IDEMPOTENCY_CONFIG_KEY = "ailink_idempotency_key"

OnApproval = Literal["wait", "interrupt"]
_SCRATCHPAD_KEY = "__pregel_scratchpad"  # LangGraph's marker of "running inside a graph task"
_CHECKPOINTER_KEY = "__pregel_checkpointer"


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
class LangChainDriver(ToolDriver):
    """Approvals the LangChain way: custom events (callbacks and the LangGraph ``custom`` stream)
    and, in a graph with a checkpointer, ``interrupt()`` (a resumed tool pauses again while pending)."""

    ids: dict[str, Any]
    child_config: RunnableConfig | None
    in_graph: bool
    asynchronous: bool
    approvals: ApprovalHandling = "wait"
    still_pending: Literal["pause", "wait"] = "pause"
    #: The call's arguments, shown to a reviewer in the interrupt's ``action_requests``.
    args: dict[str, Any] = field(default_factory=dict)

    def emit(self, event: ApprovalPending | ApprovalResolved) -> Any:
        name = event.name
        data = {**self.ids, **event.to_dict()}
        if self.asynchronous:
            return self._aemit(name, data)
        if self.child_config is not None:
            dispatch_custom_event(name, data, config=self.child_config)
        self._write_stream(name, data)
        return None

    async def _aemit(self, name: str, data: dict[str, Any]) -> None:
        if self.child_config is not None:
            await adispatch_custom_event(name, data, config=self.child_config)
        self._write_stream(name, data)

    @contextlib.contextmanager
    def _graph_context(self) -> Iterator[None]:
        """The run's config in context for LangGraph's ``get_config()``: asyncio tasks on Python 3.10
        do not inherit it, so an async tool there would find none."""
        if var_child_runnable_config.get() is not None or self.child_config is None:
            yield
            return
        token = var_child_runnable_config.set(self.child_config)
        try:
            yield
        finally:
            var_child_runnable_config.reset(token)

    def _write_stream(self, name: str, data: dict[str, Any]) -> None:
        if not self.in_graph:
            return
        from langgraph.config import get_stream_writer

        try:
            with self._graph_context():
                writer = get_stream_writer()
        except (KeyError, RuntimeError):  # not a LangGraph task after all
            return
        writer({"type": name, **data})

    def pause(self, request: PauseRequest) -> Any:
        from langgraph.types import interrupt

        with self._graph_context():
            answer = interrupt({"type": "ailink.approval", **self.ids, **request.to_dict(),
                                **self.hitl_request(request)})
        return _rejection(answer) or answer

    def hitl_request(self, request: PauseRequest) -> dict[str, Any]:
        """The fields of LangChain's ``HITLRequest`` (``HumanInTheLoopMiddleware``), so HITL UIs such as
        Agent Inbox render the pause. Two decisions: ``approve`` means "resume": the gateway decides (a
        reviewer in its inbox or CLI) and the resumed tool gets what it decided; ``reject`` (with an
        optional ``message``) withdraws the approval at the gateway and the model reads the rejection."""
        return {
            "action_requests": [{"name": request.tool, "args": self.args, "description": request.message}],
            "review_configs": [{"action_name": request.tool, "allowed_decisions": ["approve", "reject"]}],
        }


def _rejection(answer: Any) -> Rejection | None:
    """The rejection a resume value carries: a LangChain HITL answer (``{"decisions": [decision]}``, or the
    decision alone) whose decision is not ``approve`` (the call as it stands was not approved: ``reject``,
    and ``edit``/``respond``, which the gateway cannot honour); any other value means "look again"."""
    decisions = answer.get("decisions") if isinstance(answer, Mapping) else None
    decision = decisions[0] if isinstance(decisions, list) and decisions else answer
    if not isinstance(decision, Mapping) or decision.get("type") in (None, "approve"):
        return None
    message = decision.get("message")
    return Rejection(message if isinstance(message, str) and message else None)


class AIlinkTool(BaseTool):
    """A LangChain tool for one API behind the AIlink gateway (wraps :class:`ailink.adapters.GatewayTool`).

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
            values = {**values["gateway"].tool_fields(), **values}
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

    def _parse_input(self, tool_input: str | dict[str, Any], tool_call_id: str | None) -> str | dict[str, Any]:
        # With a JSON Schema args_schema (generated tools) LangChain passes objects through unchecked,
        # refuses anything else with a plain ValueError, and would let an argument named like one of
        # _run's own parameters (config, run_manager) be replaced: the core checks what the model sent.
        if isinstance(self.args_schema, dict):
            invocation = _invocation.get()
            invalid = self.gateway.prepare(invocation.raw_args if invocation is not None else tool_input)[2]
            if invalid is not None:
                raise AIlinkToolError(invalid, tool_call_id, self.name)
        return super()._parse_input(tool_input, tool_call_id)

    # -- the tool body: LangChain context in, the core's result out ----------------------------
    def _run(
        self, config: RunnableConfig, run_manager: CallbackManagerForToolRun | None = None, **kwargs: Any
    ) -> tuple[str, dict[str, Any]]:
        args, context, driver = self._translate(kwargs, run_manager, config, asynchronous=False)
        return self._output(self.gateway.run(args, context, driver), driver)

    async def _arun(
        self, config: RunnableConfig, run_manager: AsyncCallbackManagerForToolRun | None = None, **kwargs: Any
    ) -> tuple[str, dict[str, Any]]:
        args, context, driver = self._translate(kwargs, run_manager, config, asynchronous=True)
        return self._output(await self.gateway.arun(args, context, driver), driver)

    def _output(self, result: ToolResult, driver: LangChainDriver) -> tuple[str, dict[str, Any]]:
        if result.ok:
            return result.content, result.artifact
        raise AIlinkToolError(result, driver.ids["tool_call_id"], self.name)

    def _translate(
        self,
        kwargs: dict[str, Any],
        run_manager: CallbackManagerForToolRun | AsyncCallbackManagerForToolRun | None,
        config: RunnableConfig,
        *,
        asynchronous: bool,
    ) -> tuple[dict[str, Any], CallContext, LangChainDriver]:
        """This execution's LangChain context as the core's ``CallContext`` and a driver."""
        assert run_manager is not None  # BaseTool always passes one to a _run that accepts it
        invocation = _invocation.get()
        tool_call_id = invocation.tool_call_id if invocation is not None else None
        configurable: Mapping[str, Any] = config.get("configurable") or {}
        in_graph = _SCRATCHPAD_KEY in configurable
        scope = resolve_scope(
            run_id=run_manager.run_id, parent_run_id=run_manager.parent_run_id, metadata=run_manager.metadata,
            handlers=run_manager.handlers, configurable=configurable,
            extra={"tool": self.name, "tool_call_id": tool_call_id},
        )
        # without a ToolCall: a graph task's checkpoint namespace survives resume; else the run id. A root
        # run id as session changes per invocation: the key then rests on the call id alone (stable_session)
        call_id = tool_call_id or (in_graph and run_manager.metadata.get("checkpoint_ns")) or str(run_manager.run_id)
        context = replace(scope, call_id=str(call_id), tool_call_id=tool_call_id,
                          idempotency_key=configurable.get(IDEMPOTENCY_CONFIG_KEY))
        args = {k: v for k, v in kwargs.items() if v is not None}
        driver = LangChainDriver(
            ids={"tool_call_id": tool_call_id, "session_id": scope.session_id},
            child_config=patch_config(config, callbacks=run_manager.get_child()),
            in_graph=in_graph,
            asynchronous=asynchronous,
            approvals="pause" if self._can_interrupt(in_graph, configurable) else "wait",
            args=args,
        )
        return args, context, driver

    def _can_interrupt(self, in_graph: bool, configurable: Mapping[str, Any]) -> bool:
        if self.on_approval != "interrupt":
            return False
        if in_graph and configurable.get(_CHECKPOINTER_KEY) is not None:
            return True
        warnings.warn(
            f"AIlink tool {self.name!r}: on_approval='interrupt' needs a LangGraph graph with a "
            "checkpointer; waiting for the approval in the tool instead",
            RuntimeWarning,
            stacklevel=3,
        )
        return False

    def _invalid_arguments_message(self, error: Exception) -> Any:
        """``handle_validation_error``: the core's explanation of what is wrong with the arguments."""
        invocation = _invocation.get()
        invalid = self.gateway.prepare(invocation.raw_args if invocation is not None else None)[2]
        if invalid is None:  # LangChain refused what the core accepts: still explain
            return f"Invalid arguments for tool '{self.name}': {error}. Nothing was sent."
        tool_call_id = invocation.tool_call_id if invocation is not None else None
        return tool_error_message(AIlinkToolError(invalid, tool_call_id, self.name))


def _capture(input: Any) -> tuple[_Invocation, Any]:
    """What the model sent (the ToolCall id and arguments), and the input to give LangChain.

    A ToolCall whose ``args`` are a JSON text of an object is read as that object. Arguments
    LangChain cannot handle (not an object, or nested too deep: it copies and logs them before
    validating) are replaced by ``{}``, so its validation fails and
    :meth:`AIlinkTool._invalid_arguments_message` explains what was wrong with the original.
    """
    if not (isinstance(input, dict) and input.get("type") == "tool_call"):
        return _Invocation(None, input), {} if nests_deeper_than(input) else input
    args = input.get("args")
    if isinstance(args, str):
        try:
            parsed = json.loads(args)
        except ValueError:
            parsed = None
        args = parsed if isinstance(parsed, dict) else args
    usable = isinstance(args, dict) and not nests_deeper_than(args)
    return _Invocation(input.get("id"), args), {**input, "args": args if usable else {}}


def langchain_tool(*, on_approval: OnApproval = "wait", **options: Unpack[GatewayToolOptions]) -> AIlinkTool:
    """A LangChain tool for the API behind ``token`` (the one-liner of the AIlink docs).

    ``options`` are :class:`ailink.adapters.GatewayToolOptions` (``name``, ``description``,
    ``token``, ``methods``, ``base_path``, ``allowed_paths``, ``approval_timeout``, ``client``, ...);
    ``on_approval="interrupt"`` pauses a LangGraph graph instead of waiting in the tool.
    """
    gateway = gateway_tool(**options)
    return AIlinkTool(**gateway.tool_fields(), gateway=gateway, on_approval=on_approval)


def langchain_tools(*, on_approval: OnApproval = "wait", **options: Unpack[OpenAPIToolsOptions]) -> list[AIlinkTool]:
    """One LangChain tool per operation of an OpenAPI document (needs ``ailink-sdk[openapi]``).

    ``options`` are :class:`ailink.adapters.OpenAPIToolsOptions` (``openapi``, ``token``, filters,
    ``policies``/``admin``, ...). Each tool's ``args_schema`` is the operation's JSON Schema and its
    ``metadata["ailink"]`` says how the token's policies gate it; approvals wait in the tool or, with
    ``on_approval="interrupt"``, pause a LangGraph graph, exactly as for :func:`langchain_tool`.
    """
    return [AIlinkTool(**gateway.tool_fields(json_schema=True), gateway=gateway, on_approval=on_approval,
                       metadata={"ailink": gateway.tool_metadata()})
            for gateway in gateway_tools(**options)]
