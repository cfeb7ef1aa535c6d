"""What a tool is and what one call of it asks: the action, its arguments, path safety, the call's context."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal
from urllib.parse import quote, unquote

import pydantic

from ailink._errors import InvalidToolArgumentsError
from ailink._idempotency import check_idempotency_key, derive_idempotency_key, new_idempotency_key
from ailink._tracing import TraceContext, current_trace

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: Deepest nesting of lists and objects a tool's arguments may have.
MAX_ARGUMENT_DEPTH = 64
#: Longest request target (path and query string, once encoded) a tool sends: longer ones are
#: refused before sending (servers answer 414; the emulator refuses paths over 8,192 characters).
MAX_TARGET_CHARS = 8192
#: Argument names a generated tool never uses: the adapters' own call signatures take them
#: (LangChain's ``config``/``run_manager``/``callbacks``, a workflow ``ctx``/``context``, ...) and
#: ``idempotency_key`` is the core's own argument. An adapter whose framework injects another
#: keyword into the tool call adds it here.
RESERVED_ARGUMENT_NAMES = frozenset({
    "args", "callbacks", "config", "context", "ctx", "idempotency_key", "kwargs", "run_manager", "self",
    "tool_call_id",
})


@dataclass(frozen=True)
class CallContext:
    """What an adapter knows about one tool call.

    ``call_id`` is the framework's own id for the call when it has one (a LangChain ToolCall
    id, a CrewAI task id); with ``session_id`` it makes the idempotency key survive
    re-execution. ``stable_session=False`` says the session is a per-execution fallback (a run
    id, a random id): it then stays out of the key, so the same call id gives the same key with
    or without a session. ``idempotency_key`` overrides the derived key. ``tool_call_id`` is the
    id the model gave this tool call, when there is one (traces report it as
    ``gen_ai.tool.call.id``; a CrewAI task id is not one).
    """

    session_id: str | None = None
    parent_span_id: str | None = None
    call_id: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    user_id: str | None = None
    stable_session: bool = True
    tool_call_id: str | None = None

    def trace(self, tool_name: str | None = None) -> TraceContext:
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


def check_target_length(full_path: str, query: Mapping[str, Any] | None) -> None:
    """Refuse a call whose path and query string would be longer than :data:`MAX_TARGET_CHARS`."""
    size = len(full_path)
    for name, value in (query or {}).items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            size += len(quote(str(name), safe="")) + len(quote(str(item), safe="")) + 2
            if size > MAX_TARGET_CHARS:
                raise _refuse(f"the request's path and query string would be longer than {MAX_TARGET_CHARS} "
                              "characters")
    if size > MAX_TARGET_CHARS:
        raise _refuse(f"the request's path would be longer than {MAX_TARGET_CHARS} characters")


def nests_deeper_than(value: Any, limit: int = MAX_ARGUMENT_DEPTH) -> bool:
    """True when ``value`` nests lists/objects deeper than ``limit`` (checked without recursion, so
    adapters can refuse such arguments before their framework copies or logs them)."""
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


def call_arguments(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    """The raw arguments of a tool function called as ``f(*args, **kwargs)``: the keywords, or the
    positional value(s) a caller passed (``tool.run('{"method": ...}')``), which
    :meth:`ToolAction.parse` reads or refuses as not an object."""
    if not args:
        return dict(kwargs)
    return args[0] if len(args) == 1 and not kwargs else [*args, dict(kwargs)]


def _path_allowed(method: str, path: str, patterns: Sequence[str]) -> bool:
    for pattern in patterns:
        verb, _, glob = pattern.partition(" ")
        if glob and verb.upper() in HTTP_METHODS:
            if verb.upper() == method and fnmatch.fnmatchcase(path, glob):
                return True
        elif fnmatch.fnmatchcase(path, pattern):
            return True
    return False


def load_arguments(args: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """Model-given arguments as a dict: a JSON text is read, anything but an object or arguments
    nested deeper than :data:`MAX_ARGUMENT_DEPTH` are refused; top-level ``None`` values (a model's
    way of leaving an optional argument out) are dropped."""
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except (ValueError, RecursionError):
            raise _refuse("arguments are not valid JSON (or nest too deep)") from None
    if not isinstance(args, Mapping):
        raise _refuse("arguments must be a JSON object")
    if nests_deeper_than(args):
        raise _refuse(f"arguments nest deeper than {MAX_ARGUMENT_DEPTH} levels")
    return {str(k): v for k, v in args.items() if v is not None}


def checked_key(key: Any) -> str | None:
    """The ``idempotency_key`` argument, checked (``None`` when not given)."""
    if key is None:
        return None
    if not isinstance(key, str):
        raise _refuse("idempotency_key must be a string")
    try:
        return check_idempotency_key(key)
    except ValueError as exc:
        raise _refuse(f"idempotency_key: {exc}") from None


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

    def argument_hint(self) -> str:
        """What the arguments look like, for the model reading an invalid-arguments answer."""
        methods = ", ".join(self.methods)
        return f"{{\"method\": one of {methods}, \"path\": \"/...\", \"query\": {{...}}?, \"body\": {{...}}?}}"

    def metadata(self) -> dict[str, Any]:
        """JSON-ready facts about the tool for frameworks and UIs (what it may call, how it is gated)."""
        return {"kind": "http", "methods": list(self.methods), "base_path": self.base_path,
                "allowed_paths": list(self.allowed_paths) if self.allowed_paths is not None else None}

    def parse(self, args: Mapping[str, Any] | str | None) -> ParsedCall:
        """Validate model-given arguments; raises :class:`InvalidToolArgumentsError` (nothing is sent)."""
        cleaned = load_arguments(args)
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
        check_target_length(full_path, data.get("query"))
        return ParsedCall(method, path, full_path, data.get("query"), body, checked_key(data.get("idempotency_key")))

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
