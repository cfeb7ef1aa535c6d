"""The one-liners. This module does not import crewai at import time: each function does when called."""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from typing_extensions import Unpack

from ailink.adapters import ClientConfig, GatewayToolOptions, OpenAPIToolsOptions, gateway_tool, gateway_tools

if TYPE_CHECKING:
    from crewai_ailink._llm import AIlinkCompletion
    from crewai_ailink._tool import AIlinkTool

__all__ = ["ailink_session", "chosen_session_id", "crewai_llm", "crewai_tool", "crewai_tools"]

# The execution id an ``ailink_session`` block pinned (CrewAI mints a random one otherwise).
_chosen_session: contextvars.ContextVar[str | None] = contextvars.ContextVar("crewai_ailink_session", default=None)


def chosen_session_id() -> str | None:
    """The session id pinned by the innermost open :func:`ailink_session` block, if any."""
    return _chosen_session.get()


def crewai_tool(*, on_approval: Literal["wait"] = "wait", **options: Unpack[GatewayToolOptions]) -> AIlinkTool:
    """A CrewAI tool calling the API behind ``token`` through the AIlink gateway.

    ``options`` are :class:`ailink.adapters.GatewayToolOptions`. The model fills in ``method`` (one
    of ``methods``), ``path`` (under ``base_path``, optionally restricted to ``allowed_paths``
    globs), ``query`` and ``body``. A call that needs human approval blocks until a reviewer decides
    or ``approval_timeout`` seconds pass, emitting :class:`AIlinkApprovalPendingEvent` /
    :class:`AIlinkApprovalResolvedEvent` on ``crewai_event_bus``. CrewAI has no pause/resume for a
    tool, so ``on_approval`` accepts only ``"wait"``.
    """
    if on_approval != "wait":
        raise ValueError("CrewAI tools can only wait for approvals: on_approval must be 'wait'")
    from crewai_ailink._tool import AIlinkTool

    gateway = gateway_tool(**options)
    return AIlinkTool(**gateway.tool_fields(), gateway=gateway)


def crewai_tools(*, on_approval: Literal["wait"] = "wait", **options: Unpack[OpenAPIToolsOptions]) -> list[AIlinkTool]:
    """One CrewAI tool per operation of an OpenAPI document (needs ``ailink-sdk[openapi]``).

    ``options`` are :class:`ailink.adapters.OpenAPIToolsOptions` (``openapi``, ``token``, filters,
    ``policies``/``admin``, ...). Each tool's ``args_schema`` carries the operation's JSON Schema,
    its description says when the token's policies ask a human first, and ``ailink_metadata``
    holds the same facts for programs. Approvals wait, with the events of :func:`crewai_tool`.
    """
    if on_approval != "wait":
        raise ValueError("CrewAI tools can only wait for approvals: on_approval must be 'wait'")
    from crewai_ailink._tool import AIlinkTool

    return [AIlinkTool(**gateway.tool_fields(), gateway=gateway) for gateway in gateway_tools(**options)]


def crewai_llm(
    *,
    model: str,
    token: str | None = None,
    gateway_url: str | None = None,
    agent_name: str | None = None,
    approval_timeout: float | None = None,
    **kwargs: Any,
) -> AIlinkCompletion:
    """A CrewAI LLM (the native OpenAI provider) that talks to ``{gateway}/v1`` with ``token``.

    Every request carries the session headers of the running kickoff (session = the CrewAI
    execution id, the task as parent span) through a CrewAI transport interceptor; retries
    are off (``max_retries=0``; other values are refused) and the read timeout exceeds the approval timeout, so a
    gateway that holds a request for a human decision is not cut off or re-sent. The token
    never shows in ``repr``, ``str`` or ``model_dump``/``model_dump_json``. ``kwargs`` go to
    the provider (``temperature``, ``stream``, ...).
    """
    from crewai_ailink._llm import build_llm

    config = ClientConfig.from_env(token, gateway_url, agent_name=agent_name, approval_timeout=approval_timeout)
    return build_llm(model, config, kwargs)


@contextlib.contextmanager
def ailink_session(session_id: str | None = None) -> Iterator[str]:
    """Pin the session id of the kickoffs inside the block (a new random one when omitted).

    CrewAI adopts an execution id set before ``kickoff()``; every tool call and every
    :func:`crewai_llm` call of the kickoff then sends it as ``X-Session-Id``. Yields the id.
    """
    from crewai.execution import clear_execution_uuid, set_execution_uuid

    sid = session_id or f"crew_{uuid.uuid4().hex}"
    token = set_execution_uuid(sid)
    chosen = _chosen_session.set(sid)
    try:
        yield sid
    finally:
        _chosen_session.reset(chosen)
        clear_execution_uuid(token)
