"""A gateway-proxied API as an agent tool, written once for every framework.

Adapters translate their framework's context into a :class:`CallContext` and the
:class:`ToolResult` back into the framework's return value or event; everything in between
(validation, path safety, headers, idempotency, sending, approval waits, outcome mapping)
happens here, in one flow driven by both the sync and the async client.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import Any, Literal
from urllib.parse import unquote

import httpx
import pydantic

from ailink._approval import (
    PendingApproval,
    is_pending_response,
    proxied_call,
)
from ailink._client import AIlinkClient, AsyncClient
from ailink._config import ClientConfig
from ailink._errors import (
    AIlinkError,
    APIConnectionError,
    ApprovalRejectedError,
    ApprovalTimeoutError,
    AuthenticationError,
    InvalidToolArgumentsError,
    MalformedResponseError,
    PermissionDeniedError,
    PolicyDeniedError,
    RateLimitError,
    SpendCapExceededError,
    json_or_none,
)
from ailink._flow import Flow, run_async, run_sync
from ailink._idempotency import (
    canonical_json,
    check_idempotency_key,
    derive_idempotency_key,
    new_idempotency_key,
)
from ailink._retry import idempotency_key_of, is_write
from ailink._secrets import scrub
from ailink._tracing import TraceContext, current_trace, trace_context

__all__ = ["CallContext", "GatewayTool", "ToolAction", "ToolOutcome", "ToolResult", "gateway_tool"]

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PENDING_WAIT_MODES = ("wait", "return")
OnPending = Callable[[PendingApproval], Any]


class ToolOutcome(str, Enum):
    """How a tool call ended."""

    OK = "ok"
    PENDING = "pending"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    DENIED = "denied"
    INVALID_ARGUMENTS = "invalid_arguments"
    ERROR = "error"
    UNKNOWN = "outcome_unknown"


_ERROR_CODES = {
    ToolOutcome.PENDING: "approval_pending",
    ToolOutcome.REJECTED: "approval_rejected",
    ToolOutcome.TIMED_OUT: "approval_timeout",
    ToolOutcome.DENIED: "policy_denied",
    ToolOutcome.INVALID_ARGUMENTS: "invalid_arguments",
    ToolOutcome.ERROR: "request_failed",
    ToolOutcome.UNKNOWN: "outcome_unknown",
}


@dataclass(frozen=True)
class CallContext:
    """What an adapter knows about one tool call.

    ``call_id`` is the framework's own id for the call when it has one (a LangChain ToolCall
    id, a CrewAI task id); with ``session_id`` it makes the idempotency key survive
    re-execution. ``stable_session=False`` says the session is a per-execution fallback (a run
    id, a random id): it then stays out of the key, so the same call id gives the same key with
    or without a session. ``idempotency_key`` overrides the derived key.
    """

    session_id: str | None = None
    parent_span_id: str | None = None
    call_id: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    user_id: str | None = None
    stable_session: bool = True

    def trace(self, tool_name: str) -> TraceContext:
        """The trace context requests of this call are sent under (inherits an open trace block)."""
        outer = current_trace() or TraceContext()
        return outer.child(
            session_id=self.session_id,
            parent_span_id=self.parent_span_id,
            properties=dict(self.properties),
            user_id=self.user_id,
            tool_name=tool_name,
        )


@dataclass(frozen=True)
class ParsedCall:
    """Validated arguments of one call."""

    method: str
    path: str
    full_path: str
    query: dict[str, Any] | None
    body: Any
    idempotency_key: str | None

    def fingerprint(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.full_path, "query": self.query or {}, "body": self.body}


@dataclass(frozen=True)
class ToolResult:
    """The outcome of a tool call: text for the model and the raw details for the program."""

    outcome: ToolOutcome
    content: str
    status_code: int | None = None
    body: Any = None
    approval_id: str | None = None
    idempotency_key: str | None = None
    request_id: str | None = None
    policy: str | None = None
    reason: str | None = None
    replayed: bool = False
    pending: PendingApproval | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is ToolOutcome.OK

    @property
    def is_error(self) -> bool:
        """True for outcomes the model should treat as a failed action (not for pending)."""
        return self.outcome not in (ToolOutcome.OK, ToolOutcome.PENDING)

    @property
    def error_code(self) -> str | None:
        """``policy_denied``, ``approval_rejected``, ``approval_timeout``, ``invalid_arguments``, ..."""
        return _ERROR_CODES.get(self.outcome)

    @property
    def artifact(self) -> dict[str, Any]:
        """Everything about the call, JSON-ready (never shown to the model by the adapters)."""
        return {
            "status": self.outcome.value,
            "status_code": self.status_code,
            "approval_id": self.approval_id,
            "idempotency_key": self.idempotency_key,
            "request_id": self.request_id,
            "policy": self.policy,
            "reason": self.reason,
            "replayed": self.replayed,
            "body": self.body,
            "pending": self.pending.to_dict() if self.pending else None,
        }


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with a note saying so."""
    if limit <= 0 or len(text) <= limit:
        return text
    return text[:limit] + f"\n[truncated: showing {limit} of {len(text)} characters]"


def _refuse(message: str) -> InvalidToolArgumentsError:
    return InvalidToolArgumentsError(message)


def _check_decoded(text: str) -> None:
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise _refuse("path may not contain control characters (CR, LF, NUL, ...), raw or percent-encoded")
    if "\\" in text:
        raise _refuse("path may not contain '\\', raw or percent-encoded")
    for segment in text.split("/"):
        if segment in (".", ".."):
            raise _refuse("the path may not contain '.' or '..' segments, raw or percent-encoded")


def resolve_path(base_path: str, path: str) -> str:
    """``base_path`` + ``path``, refusing anything that could leave the base path or smuggle a
    header: dot segments, control characters and encoded separators, however often encoded."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise _refuse("path must be a string starting with '/' (relative to the API base path)")
    if path.startswith("//") or "://" in path:
        raise _refuse("path must be a relative path, not a URL or host")
    if any(ch in path for ch in "?#") or any(ch.isspace() for ch in path):
        raise _refuse("path may not contain '?', '#' or spaces; put parameters in 'query'")
    _check_decoded(path)
    decoded = path
    for _ in range(4):
        lowered = decoded.lower()
        if "%2f" in lowered or "%5c" in lowered or "%2e" in lowered or "%00" in lowered or "%25" in lowered:
            raise _refuse("path may not contain encoded '/', '\\', '.', '%' or NUL characters")
        nxt = unquote(decoded)
        _check_decoded(nxt)
        if nxt == decoded:
            break
        decoded = nxt
    if decoded.startswith("//"):
        raise _refuse("path must be a relative path, not a URL or host")
    return base_path.rstrip("/") + path


#: Deepest nesting of lists and objects a tool's arguments may have.
MAX_ARGUMENT_DEPTH = 64


def _too_deep(value: Any, limit: int = MAX_ARGUMENT_DEPTH) -> bool:
    """True when ``value`` nests lists/objects deeper than ``limit`` (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _path_allowed(method: str, path: str, patterns: Sequence[str]) -> bool:
    for pattern in patterns:
        verb, _, glob = pattern.partition(" ")
        if glob and verb.upper() in HTTP_METHODS:
            if verb.upper() == method and fnmatch.fnmatchcase(path, glob):
                return True
        elif fnmatch.fnmatchcase(path, pattern):
            return True
    return False


def _describe_validation(exc: pydantic.ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ())) or "arguments"
        parts.append(f"{where}: {error.get('msg')}")
    return "; ".join(parts)


@dataclass(frozen=True)
class ToolAction:
    """The definition of a gateway-proxied API exposed as one agent tool.

    ``methods`` are the HTTP methods the model may use; ``base_path`` prefixes every path
    (for example ``/v1/proxy/services/payments``); ``allowed_paths`` are optional glob
    patterns on the model-given path, optionally prefixed by a method (``"POST /v1/charges"``).
    Responses longer than ``max_response_chars`` are truncated for the model, with a note.
    """

    name: str
    description: str
    methods: tuple[str, ...] = ("GET",)
    base_path: str = "/"
    allowed_paths: tuple[str, ...] | None = None
    max_response_chars: int = 4000

    def __post_init__(self) -> None:
        if not _TOOL_NAME.match(self.name):
            raise ValueError("tool name must be 1-64 characters of letters, digits, '_' or '-'")
        methods = tuple(dict.fromkeys(m.upper() for m in self.methods))
        if not methods or any(m not in HTTP_METHODS for m in methods):
            raise ValueError(f"methods must be a non-empty subset of {HTTP_METHODS}")
        object.__setattr__(self, "methods", methods)
        if not self.base_path.startswith("/"):
            raise ValueError("base_path must start with '/'")
        if self.allowed_paths is not None:
            object.__setattr__(self, "allowed_paths", tuple(self.allowed_paths))

    @cached_property
    def args_model(self) -> type[pydantic.BaseModel]:
        """The pydantic model of the tool's arguments (what the model fills in)."""
        method_type: Any = Literal[self.methods]  # type: ignore[valid-type]
        method_default: Any = self.methods[0] if len(self.methods) == 1 else ...
        paths = f" Allowed paths: {', '.join(self.allowed_paths)}." if self.allowed_paths else ""
        model_name = "".join(part.capitalize() for part in re.split(r"[_-]", self.name)) + "Arguments"
        return pydantic.create_model(
            model_name,
            __config__=pydantic.ConfigDict(extra="forbid"),
            method=(method_type, pydantic.Field(method_default, description="HTTP method")),
            path=(str, pydantic.Field(description=f"API path starting with '/', e.g. /v1/resource.{paths}")),
            query=(
                dict[str, str | int | float | bool] | None,
                pydantic.Field(None, description="Query parameters"),
            ),
            body=(dict[str, Any] | None, pydantic.Field(None, description="JSON request body")),
            idempotency_key=(
                str | None,
                pydantic.Field(
                    None,
                    description="Leave empty. Set only to deliberately repeat an identical action as a new one.",
                ),
            ),
        )

    def args_schema(self) -> dict[str, Any]:
        """The JSON schema of the arguments."""
        return self.args_model.model_json_schema()

    def parse(self, args: Mapping[str, Any] | str | None) -> ParsedCall:
        """Validate model-given arguments; raises :class:`InvalidToolArgumentsError` (nothing is sent)."""
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except (ValueError, RecursionError):
                raise _refuse("arguments are not valid JSON (or nest too deep)") from None
        if not isinstance(args, Mapping):
            raise _refuse("arguments must be a JSON object")
        if _too_deep(args):
            raise _refuse(f"arguments nest deeper than {MAX_ARGUMENT_DEPTH} levels")
        cleaned = {k: v for k, v in args.items() if v is not None}
        try:
            model = self.args_model.model_validate(cleaned)
        except pydantic.ValidationError as exc:
            raise _refuse(_describe_validation(exc)) from None
        data = model.model_dump()
        method = str(data["method"]).upper()
        path = str(data["path"])
        full_path = resolve_path(self.base_path, path)
        if self.allowed_paths is not None and not _path_allowed(method, path, self.allowed_paths):
            raise _refuse(f"{method} {path} is not one of this tool's allowed paths: {', '.join(self.allowed_paths)}")
        body = data.get("body")
        if body is not None and method == "GET":
            raise _refuse("a GET request cannot have a body; use 'query'")
        key = data.get("idempotency_key")
        if key is not None:
            try:
                check_idempotency_key(key)
            except ValueError as exc:
                raise _refuse(f"idempotency_key: {exc}") from None
        return ParsedCall(method, path, full_path, data.get("query"), body, key)

    def idempotency_key(self, call: ParsedCall, context: CallContext) -> str:
        """Explicit key in the arguments, else the context's, else one derived from values that
        survive re-execution: (session, call id, tool name, canonical arguments)."""
        if call.idempotency_key:
            return call.idempotency_key
        if context.idempotency_key:
            try:
                return check_idempotency_key(context.idempotency_key)
            except ValueError as exc:
                raise _refuse(f"the idempotency key given to this call: {exc}") from None
        session = context.session_id if context.stable_session else None
        if session is None and context.call_id is None:
            return new_idempotency_key()  # nothing survives re-execution: one fresh key for this call
        return derive_idempotency_key(session, context.call_id, self.name, call.fingerprint())


# -- the flow -------------------------------------------------------------------------------


def _body_of(response: httpx.Response) -> Any:
    if not response.content:
        return None
    body = json_or_none(response.content)
    return body if body is not None else response.text


def _text_of(body: Any) -> str:
    if body is None:
        return ""
    return scrub(body if isinstance(body, str) else canonical_json(body))


def _ok_result(action: ToolAction, call: ParsedCall, key: str | None, response: httpx.Response) -> ToolResult:
    body = _body_of(response)
    replayed = response.headers.get("idempotent-replayed", "").lower() == "true"
    approval_id = response.headers.get("x-ailink-approval-id") or response.headers.get("x-trueflow-approval-id")
    head = f"HTTP {response.status_code} from {call.method} {call.path}"
    if approval_id:
        head += f" (approved by a human reviewer, approval {approval_id}; performed once)"
    elif replayed:
        head += " (stored result: this exact action was already performed once; it was not repeated)"
    return ToolResult(
        ToolOutcome.OK,
        truncate(f"{head}\n{_text_of(body)}".rstrip(), action.max_response_chars),
        status_code=response.status_code,
        body=body,
        approval_id=approval_id,
        idempotency_key=key,
        request_id=response.request.headers.get("x-request-id") if response.request else None,
        replayed=replayed,
    )


def _unknown_result(action: ToolAction, call: ParsedCall, key: str | None, error: AIlinkError) -> ToolResult:
    what = f"{call.method} {call.path}"
    approval_id = getattr(error, "approval_id", None)
    cause = f"HTTP {error.status_code}" if error.status_code else type(error).__name__
    if error.resend_tells_outcome:
        learn = (
            f"To learn what happened, call this tool again with the same arguments and "
            f"idempotency_key \"{key}\": the gateway then answers with the stored outcome instead of repeating it."
        )
    else:
        learn = (
            "Check whether it happened (for example by reading the resource) before doing it again; "
            f"its idempotency key is \"{key}\"."
        )
    return ToolResult(
        ToolOutcome.UNKNOWN,
        truncate(
            f"OUTCOME UNKNOWN for {what} ({cause}): the action may or may not have been performed. "
            f"Do not repeat it blindly. {learn}"
            + (f" Approval: {approval_id}." if approval_id else ""),
            action.max_response_chars,
        ),
        status_code=error.status_code,
        idempotency_key=key,
        request_id=error.request_id,
        approval_id=approval_id,
        reason=error.message,
    )


def _error_result(action: ToolAction, call: ParsedCall, key: str | None, error: AIlinkError) -> ToolResult:
    if error.ambiguous:
        return _unknown_result(action, call, key, error)
    what = f"{call.method} {call.path}"
    common: dict[str, Any] = {
        "status_code": error.status_code,
        "idempotency_key": key,
        "request_id": error.request_id,
    }
    if isinstance(error, ApprovalRejectedError):
        reason = error.reason
        return ToolResult(
            ToolOutcome.REJECTED,
            f"A human reviewer rejected {what}"
            + (f" (approval {error.approval_id})" if error.approval_id else "")  # the real gateway names none
            + (f": {reason}" if reason else "")
            + ". The action was not performed; do not retry it unchanged.",
            approval_id=error.approval_id,
            reason=reason,
            **common,
        )
    if isinstance(error, ApprovalTimeoutError):
        return ToolResult(
            ToolOutcome.TIMED_OUT,
            f"No human decision arrived for {what}"
            + (f" (approval {error.approval_id})" if error.approval_id else "")
            + " in time. The action was NOT performed.",
            approval_id=error.approval_id,
            **common,
        )
    if isinstance(error, PolicyDeniedError):
        policy = error.policy_name
        return ToolResult(
            ToolOutcome.DENIED,
            f"{what} was denied by policy '{policy or 'unknown'}': {error.reason}. The action was not performed.",
            policy=policy,
            reason=error.reason,
            **common,
        )
    if isinstance(error, (PermissionDeniedError, SpendCapExceededError)):
        return ToolResult(
            ToolOutcome.DENIED,
            f"{what} was refused by the gateway ({error.code}): {error.message}. The action was not performed.",
            reason=error.message,
            **common,
        )
    if isinstance(error, RateLimitError):
        wait = f" Retry after {error.retry_after:g} s." if error.retry_after is not None else ""
        return ToolResult(
            ToolOutcome.ERROR, f"{what} was rate limited; it was not performed.{wait}", reason=error.message, **common
        )
    if isinstance(error, AuthenticationError):
        return ToolResult(
            ToolOutcome.ERROR,
            f"{what} was not performed: the gateway did not accept this tool's credentials ({error.code}). "
            "Retrying will not help; the tool's configuration must be fixed.",
            reason=error.message,
            **common,
        )
    if isinstance(error, APIConnectionError):
        return ToolResult(
            ToolOutcome.ERROR,
            f"{what} was not performed: the gateway could not be reached ({error.message})",
            reason=error.message,
            **common,
        )
    body = _body_of(error.response) if error.response is not None else None
    detail = _text_of(body) or error.message
    status = f"HTTP {error.status_code}" if error.status_code else type(error).__name__
    return ToolResult(
        ToolOutcome.ERROR,
        truncate(f"{what} failed with {status}: {detail}", action.max_response_chars),
        body=body,
        reason=error.message,
        **common,
    )


def _pending_result(call: ParsedCall, key: str | None, pending: PendingApproval) -> ToolResult:
    return ToolResult(
        ToolOutcome.PENDING,
        f"{call.method} {call.path} is waiting for human approval (approval {pending.approval_id}"
        + (f", policy '{pending.policy}'" if pending.policy else "")
        + "). It has not been performed yet.",
        status_code=202,
        approval_id=pending.approval_id,
        idempotency_key=key,
        policy=pending.policy,
        pending=pending,
    )


def tool_flow(
    config: ClientConfig,
    action: ToolAction,
    call: ParsedCall,
    key: str | None,
    *,
    wait: bool,
    approval_timeout: float,
    on_pending: OnPending | None,
) -> Flow[ToolResult]:
    """Send one validated call and map whatever happens to a :class:`ToolResult`.

    Every outcome the gateway or the network can produce is returned, never raised: the agent
    reads it (an ambiguous one as :attr:`ToolOutcome.UNKNOWN`, naming the key to re-send with).
    """
    request = config.build_request(
        call.method,
        call.full_path,
        params=call.query,
        json=call.body,
        idempotency_key=key,
        headers={"X-AIlink-Tool-Name": action.name},
        approval_timeout=approval_timeout,
    )
    key = idempotency_key_of(request)
    try:
        response = yield from proxied_call(
            config, request, wait=wait, approval_timeout=approval_timeout, on_pending=on_pending
        )
        if is_pending_response(response):
            return _pending_result(call, key, PendingApproval.from_response(response))
        return _ok_result(action, call, key, response)
    except AIlinkError as error:
        if isinstance(error, MalformedResponseError) and is_write(request):
            error.mark_outcome_unknown(key, resend_helps=False)
        return _error_result(action, call, key, error)


def invalid_arguments_result(action: ToolAction, error: InvalidToolArgumentsError) -> ToolResult:
    """The model-readable answer to invalid arguments (nothing was sent)."""
    methods = ", ".join(action.methods)
    return ToolResult(
        ToolOutcome.INVALID_ARGUMENTS,
        f"Invalid arguments for tool '{action.name}': {error}. Nothing was sent. "
        f"Expected {{\"method\": one of {methods}, \"path\": \"/...\", \"query\": {{...}}?, \"body\": {{...}}?}}.",
        reason=str(error),
    )


class GatewayTool:
    """A :class:`ToolAction` bound to gateway clients: what every framework adapter wraps.

    ``run`` and ``arun`` share one flow. With ``wait=False`` a pending approval is returned as
    a ``PENDING`` result instead of being waited for (for interrupt/event based adapters, which
    later call again with the same context: the gateway re-attaches by idempotency key).
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

    @property
    def client(self) -> AIlinkClient:
        if self._client is None:
            self._client = AIlinkClient.from_config(self.config)
        return self._client

    @property
    def async_client(self) -> AsyncClient:
        if self._async_client is None:
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

    def _flow(self, call: ParsedCall, key: str | None, wait: bool, on_pending: OnPending | None) -> Flow[ToolResult]:
        return tool_flow(
            self.config,
            self.action,
            call,
            key,
            wait=wait,
            approval_timeout=self.approval_timeout,
            on_pending=on_pending,
        )

    def run(
        self,
        args: Mapping[str, Any] | str | None,
        context: CallContext | None = None,
        *,
        wait: bool = True,
        on_pending: OnPending | None = None,
    ) -> ToolResult:
        """Execute one call (blocking)."""
        context = context or CallContext()
        call, key, invalid = self.prepare(args, context)
        if invalid is not None or call is None:
            assert invalid is not None
            return invalid
        with trace_context(context.trace(self.action.name)):
            return run_sync(self._flow(call, key, wait, on_pending), self.client._http)

    async def arun(
        self,
        args: Mapping[str, Any] | str | None,
        context: CallContext | None = None,
        *,
        wait: bool = True,
        on_pending: OnPending | None = None,
    ) -> ToolResult:
        """Execute one call (asyncio)."""
        context = context or CallContext()
        call, key, invalid = self.prepare(args, context)
        if invalid is not None or call is None:
            assert invalid is not None
            return invalid
        with trace_context(context.trace(self.action.name)):
            return await run_async(self._flow(call, key, wait, on_pending), self.async_client._http)


def gateway_tool(
    *,
    name: str,
    description: str,
    token: str | None = None,
    methods: Sequence[str] = ("GET",),
    gateway_url: str | None = None,
    agent_name: str | None = None,
    base_path: str = "/",
    allowed_paths: Sequence[str] | None = None,
    approval_timeout: float | None = None,
    approval_mode: Literal["async", "blocking"] = "async",
    max_response_chars: int = 4000,
    client: AIlinkClient | AsyncClient | None = None,
    **client_options: Any,
) -> GatewayTool:
    """Build a :class:`GatewayTool` from the options every adapter's one-liner accepts."""
    action = ToolAction(
        name=name,
        description=description,
        methods=tuple(methods),
        base_path=base_path,
        allowed_paths=tuple(allowed_paths) if allowed_paths is not None else None,
        max_response_chars=max_response_chars,
    )
    if client is None:
        options: dict[str, Any] = {"agent_name": agent_name, "approval_mode": approval_mode, **client_options}
        if approval_timeout is not None:
            options["approval_timeout"] = approval_timeout
        client = AIlinkClient(token, gateway_url, **options)
    if isinstance(client, AsyncClient):
        return GatewayTool(action, async_client=client, approval_timeout=approval_timeout)
    return GatewayTool(action, client=client, approval_timeout=approval_timeout)
