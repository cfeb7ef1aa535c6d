"""The options every tool one-liner takes, declared once, and the functions building tools from them.

:class:`GatewayToolOptions` (one generic tool: ``gateway_tool``) and :class:`OpenAPIToolsOptions`
(one typed tool per operation of an OpenAPI document: ``gateway_tools``) share the client options
of :class:`GatewayClientOptions`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from typing_extensions import Required, TypedDict, Unpack

from ailink._config import ApprovalMode
from ailink._retry import RetryConfig
from ailink._tools.action import ToolAction
from ailink._tools.runner import GatewayTool

if TYPE_CHECKING:
    from ailink._client import AdminClient, AIlinkClient, AsyncClient
    from ailink._models import Policy


class GatewayClientOptions(TypedDict, total=False):
    """The options every tool one-liner shares: how its calls reach the gateway.

    ``client`` reuses a client (its token, gateway and connections); otherwise one is built from
    ``token``, ``gateway_url``, ``agent_name``, ``approval_mode``, ``timeout``,
    ``retries``/``max_retries``, ``verify_ssl`` and ``headers``. ``base_path`` prefixes every path
    (``/v1/proxy/services/<name>`` for a registered service).
    """

    token: str | None
    gateway_url: str | None
    agent_name: str | None
    base_path: str
    approval_timeout: float | None
    approval_mode: ApprovalMode
    max_response_chars: int
    client: AIlinkClient | AsyncClient | None
    timeout: float
    retries: int | RetryConfig | None
    max_retries: int | None
    verify_ssl: bool
    headers: Mapping[str, str] | None


class GatewayToolOptions(GatewayClientOptions, total=False):
    """The keyword arguments of every generic tool one-liner: :func:`gateway_tool`, ``langchain_tool``,
    ``crewai_tool``, ``llamaindex_tool`` and the adapters to come (each adds only its framework's
    own options, such as ``on_approval``). Used as ``**options: Unpack[GatewayToolOptions]``.

    ``name``/``description`` describe the tool to the model; ``methods``, ``base_path`` and
    ``allowed_paths`` bound what it may call; the rest are :class:`GatewayClientOptions`.
    """

    name: Required[str]
    description: Required[str]
    methods: Sequence[str]
    allowed_paths: Sequence[str] | None


class OpenAPIToolsOptions(GatewayClientOptions, total=False):
    """The keyword arguments of every generated-tools one-liner: :func:`gateway_tools`,
    ``langchain_tools``, ``crewai_tools``, ``llamaindex_tools``, ... (needs ``ailink-sdk[openapi]``).

    ``openapi`` is the API description: a dict, a file path, or an ``http(s)`` URL (one the gateway
    serves is fetched with the token). Filters: ``include_tags``/``exclude_tags``,
    ``include_operations``/``exclude_operations`` (globs on the operationId, or on the tool name
    when there is none), ``methods``/``exclude_methods``. ``name_prefix`` prefixes every tool name.

    Approvals known in advance: ``policies`` (the token's policies: dicts or ``Policy`` objects) or
    ``admin`` / ``admin_key`` (read them through the management API) mark each tool a policy may
    gate; ``omit_denied`` (default True) leaves out operations a policy always denies.
    ``strict=True`` raises :class:`ailink.openapi.OpenAPIError` when an operation cannot be
    converted (default: it is left out with a warning); ``validate=True`` first checks the whole
    document against the OpenAPI specification.
    """

    openapi: Required[Mapping[str, Any] | str | os.PathLike[str]]
    include_tags: Sequence[str] | None
    exclude_tags: Sequence[str] | None
    include_operations: Sequence[str] | None
    exclude_operations: Sequence[str] | None
    methods: Sequence[str] | None
    exclude_methods: Sequence[str] | None
    name_prefix: str
    policies: Sequence[Policy | Mapping[str, Any]] | None
    admin: AdminClient | None
    admin_key: str | None
    omit_denied: bool
    strict: bool
    validate: bool


_ACTION_OPTIONS = ("name", "description", "methods", "base_path", "allowed_paths", "max_response_chars")
_CLIENT_OPTIONS = ("agent_name", "approval_mode", "timeout", "retries", "max_retries", "verify_ssl", "headers")


def check_options(options: Mapping[str, Any], declared: type) -> None:
    """Refuse keyword arguments ``declared`` (a TypedDict) does not list, with a ``TypeError`` naming them."""
    unknown = sorted(set(options) - set(declared.__annotations__))
    if unknown:
        raise TypeError(f"unknown tool option(s): {', '.join(unknown)}")


def client_of(options: Mapping[str, Any]) -> AIlinkClient | AsyncClient:
    """The client the tools of one one-liner share: ``client``, or one built from the options."""
    client = options.get("client")
    if client is not None:
        return client  # type: ignore[no-any-return]
    from ailink._client import AIlinkClient

    client_options = {k: options[k] for k in _CLIENT_OPTIONS if k in options}
    if options.get("approval_timeout") is not None:
        client_options["approval_timeout"] = options["approval_timeout"]
    return AIlinkClient(options.get("token"), options.get("gateway_url"), **client_options)


def bind(action: ToolAction, client: AIlinkClient | AsyncClient, approval_timeout: float | None) -> GatewayTool:
    """``action`` as a :class:`GatewayTool` on ``client`` (sync or async)."""
    from ailink._client import AsyncClient

    if isinstance(client, AsyncClient):
        return GatewayTool(action, async_client=client, approval_timeout=approval_timeout)
    return GatewayTool(action, client=client, approval_timeout=approval_timeout)


def gateway_tool(**options: Unpack[GatewayToolOptions]) -> GatewayTool:
    """A :class:`GatewayTool` from the options every adapter's one-liner accepts (:class:`GatewayToolOptions`)."""
    check_options(options, GatewayToolOptions)
    given: dict[str, Any] = dict(options)
    action_options = {k: given[k] for k in _ACTION_OPTIONS if given.get(k) is not None}
    for key in ("methods", "allowed_paths"):
        if key in action_options:
            action_options[key] = tuple(action_options[key])
    action = ToolAction(**action_options)
    return bind(action, client_of(given), given.get("approval_timeout"))


def gateway_tools(**options: Unpack[OpenAPIToolsOptions]) -> list[GatewayTool]:
    """One typed :class:`GatewayTool` per operation of an OpenAPI document (:class:`OpenAPIToolsOptions`).

    Every tool shares one client and keeps what the generic tool has (idempotency, approvals,
    sessions, readable results); its arguments are validated against the operation's JSON
    Schema before anything is sent. Needs the ``openapi`` extra (``pip install 'ailink-sdk[openapi]'``).
    """
    check_options(options, OpenAPIToolsOptions)
    from ailink._openapi.toolset import build_tools

    return build_tools(dict(options))
