"""The options every tool one-liner takes, declared once (:class:`GatewayToolOptions`), and ``gateway_tool``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from typing_extensions import Required, TypedDict, Unpack

from ailink._config import ApprovalMode
from ailink._retry import RetryConfig
from ailink._tools.action import ToolAction
from ailink._tools.runner import GatewayTool

if TYPE_CHECKING:
    from ailink._client import AIlinkClient, AsyncClient


class GatewayToolOptions(TypedDict, total=False):
    """The keyword arguments of every tool one-liner: :func:`gateway_tool`, ``langchain_tool``,
    ``crewai_tool``, ``llamaindex_tool`` and the adapters to come (each adds only its framework's
    own options, such as ``on_approval``). Used as ``**options: Unpack[GatewayToolOptions]``.

    ``name``/``description`` describe the tool to the model; ``methods``, ``base_path`` and
    ``allowed_paths`` bound what it may call. ``client`` reuses a client (its token, gateway and
    connections); otherwise one is built from ``token``, ``gateway_url``, ``agent_name``,
    ``approval_mode``, ``timeout``, ``retries``/``max_retries``, ``verify_ssl`` and ``headers``.
    """

    name: Required[str]
    description: Required[str]
    token: str | None
    methods: Sequence[str]
    gateway_url: str | None
    agent_name: str | None
    base_path: str
    allowed_paths: Sequence[str] | None
    approval_timeout: float | None
    approval_mode: ApprovalMode
    max_response_chars: int
    client: AIlinkClient | AsyncClient | None
    timeout: float
    retries: int | RetryConfig | None
    max_retries: int | None
    verify_ssl: bool
    headers: Mapping[str, str] | None


_ACTION_OPTIONS = ("name", "description", "methods", "base_path", "allowed_paths", "max_response_chars")
_CLIENT_OPTIONS = ("agent_name", "approval_mode", "timeout", "retries", "max_retries", "verify_ssl", "headers")


def gateway_tool(**options: Unpack[GatewayToolOptions]) -> GatewayTool:
    """A :class:`GatewayTool` from the options every adapter's one-liner accepts (:class:`GatewayToolOptions`)."""
    unknown = sorted(set(options) - set(GatewayToolOptions.__annotations__))
    if unknown:
        raise TypeError(f"unknown tool option(s): {', '.join(unknown)}")
    given: dict[str, Any] = dict(options)
    action_options = {k: given[k] for k in _ACTION_OPTIONS if given.get(k) is not None}
    for key in ("methods", "allowed_paths"):
        if key in action_options:
            action_options[key] = tuple(action_options[key])
    action = ToolAction(**action_options)
    approval_timeout: float | None = given.get("approval_timeout")
    client = given.get("client")
    if client is None:
        from ailink._client import AIlinkClient

        client_options = {k: given[k] for k in _CLIENT_OPTIONS if k in given}
        if approval_timeout is not None:
            client_options["approval_timeout"] = approval_timeout
        client = AIlinkClient(given.get("token"), given.get("gateway_url"), **client_options)
    from ailink._client import AsyncClient

    if isinstance(client, AsyncClient):
        return GatewayTool(action, async_client=client, approval_timeout=approval_timeout)
    return GatewayTool(action, client=client, approval_timeout=approval_timeout)
