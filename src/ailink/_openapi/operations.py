"""The operations of an OpenAPI document, each read into what one typed tool needs.

A tool is named after its ``operationId`` with only the characters tool names forbid replaced
(``[A-Za-z0-9_-]``, at most 64; a duplicate gets ``_2``, ``_3``...); an operation without one is
named from its method and path. Its arguments: every path and query parameter (named after the
parameter; a name that is not an identifier, or that an adapter's call signature reserves, is
adjusted and the original named in its description) and ``body``, the JSON request body; write
operations also take ``idempotency_key``. Header and cookie parameters are not sent by tools.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from ailink._errors import InvalidToolArgumentsError
from ailink._openapi.document import Document, UnresolvableReference
from ailink._openapi.paths import Template
from ailink._openapi.schema import SchemaConverter, SchemaError
from ailink._tools.action import HTTP_METHODS, RESERVED_ARGUMENT_NAMES, resolve_path

if TYPE_CHECKING:
    from referencing._core import Resolver

#: The methods an OpenAPI path item may have, in the order they are read.
OPENAPI_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
IDEMPOTENCY_ARGUMENT: dict[str, Any] = {
    "type": "string", "minLength": 1, "maxLength": 255,
    "description": "Leave empty. Set only to deliberately repeat an identical action as a new one, or to "
                   "re-send a call whose outcome was unknown with the key its answer named.",
}
_TOOL_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_ARGUMENT_CHARS = re.compile(r"[^A-Za-z0-9_]+")
_JSON_MEDIA = re.compile(r"^application/(?:[\w.+-]+\+)?json$", re.IGNORECASE)
Location = Literal["path", "query", "body"]


class OperationError(ValueError):
    """An operation that cannot become a tool; ``unsupported`` when it uses what tools do not send."""

    def __init__(self, message: str, *, unsupported: bool = False) -> None:
        super().__init__(message)
        self.unsupported = unsupported


@dataclass(frozen=True)
class Argument:
    """One argument of a generated tool and where its value goes in the request."""

    name: str
    wire_name: str
    location: Location
    required: bool
    style: str = "form"
    explode: bool = True
    json_encoded: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "in": self.location, "wire_name": self.wire_name, "required": self.required}


@dataclass(frozen=True)
class Operation:
    """One operation of the document as a tool: its name, its fixed method and path template, its arguments."""

    tool_name: str
    operation_id: str | None
    method: str
    path: str
    summary: str | None
    description: str | None
    tags: tuple[str, ...]
    deprecated: bool
    arguments: tuple[Argument, ...]
    args_schema: dict[str, Any] = field(repr=False, compare=False)
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready facts for metadata (the argument schema is left out)."""
        return {"operation_id": self.operation_id, "method": self.method, "path": self.path, "tags": list(self.tags),
                "deprecated": self.deprecated, "arguments": [a.to_dict() for a in self.arguments]}


@dataclass(frozen=True)
class OperationEntry:
    """An operation as it stands in the document, before conversion."""

    method: str
    path: str
    node: Mapping[str, Any]
    path_parameters: tuple[Any, ...]
    resolver: Resolver[Any]
    operation_id: str | None
    tool_name: str = ""
    tags: tuple[str, ...] = ()


def entries(document: Document) -> Iterator[OperationEntry | tuple[str, str, str]]:
    """Every operation in document order; a path item that cannot be read yields ``(method, path, problem)``."""
    for path, raw_item in (document.contents.get("paths") or {}).items():
        path = str(path)
        if path.startswith("x-"):  # a specification extension, not a path
            continue
        if not path.startswith("/"):
            yield "*", path, "a path must start with '/'"
            continue
        try:
            item, resolver, _ = document.follow(raw_item, document.resolver)
        except UnresolvableReference as exc:
            yield "*", path, str(exc)
            continue
        if not isinstance(item, Mapping):
            yield "*", path, "a path item must be an object"
            continue
        shared = item.get("parameters") or []
        if not isinstance(shared, list):
            yield "*", path, "the path item's 'parameters' must be a list"
            continue
        for method, node in item.items():
            if not isinstance(method, str) or method.lower() not in OPENAPI_METHODS:
                continue
            if not isinstance(node, Mapping):
                yield method.upper(), path, "an operation must be an object"
                continue
            op_id = node.get("operationId")
            raw_tags = node.get("tags")
            tags: list[Any] = raw_tags if isinstance(raw_tags, list) else []
            yield OperationEntry(method.upper(), path, node, tuple(shared), resolver,
                                 op_id if isinstance(op_id, str) and op_id else None,
                                 tags=tuple(str(t) for t in tags))


def tool_names(found: list[OperationEntry], prefix: str = "") -> list[OperationEntry]:
    """``found`` with unique tool names, allocated in document order (so filters never rename a tool)."""
    used: set[str] = set()
    named = []
    prefix = _TOOL_CHARS.sub("_", prefix)
    for entry in found:
        if entry.operation_id is not None:
            raw = _TOOL_CHARS.sub("_", entry.operation_id)
        else:
            segments = [s.strip("{}") for s in entry.path.split("/") if s]
            raw = re.sub(r"_+", "_", _TOOL_CHARS.sub("_", "_".join([entry.method.lower(), *segments])))
        name = _fit(prefix + raw, 64, prefix + (entry.operation_id or entry.method + entry.path))
        candidate, n = name, 1
        while candidate in used:
            n += 1
            candidate = _fit(name, 64 - len(f"_{n}"), name) + f"_{n}"
        used.add(candidate)
        named.append(replace(entry, tool_name=candidate))
    return named


def _fit(name: str, limit: int, seed: str) -> str:
    """``name`` cut to ``limit`` characters, ending with a hash of ``seed`` when cut (so cut names stay apart)."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(seed.encode("utf-8")).hexdigest()[:8]
    return name[: limit - 9] + "_" + digest


def _identifier(name: str) -> str:
    text = _ARGUMENT_CHARS.sub("_", name).strip("_") or "value"
    if text[0].isdigit():
        text = "p_" + text
    return text[:64]


def _argument_name(wire: str, location: Location, used: set[str]) -> str:
    base = _identifier(wire)
    if base not in used:
        return base
    candidate = f"{base}_{location}"[:64]
    n = 1
    while candidate in used:
        n += 1
        candidate = f"{base}_{location}"[: 64 - len(f"_{n}")] + f"_{n}"
    return candidate


@dataclass
class _Parameter:
    name: str
    location: str
    node: Mapping[str, Any]
    resolver: Resolver[Any]


class OperationReader:
    """Reads operations of one document into :class:`Operation` (one schema converter shared by all)."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self.schemas = SchemaConverter(document)

    def read(self, entry: OperationEntry) -> Operation:
        """The tool form of ``entry``; raises :class:`OperationError`."""
        if entry.method not in HTTP_METHODS:
            raise OperationError(f"the method {entry.method} is not one a gateway tool sends", unsupported=True)
        try:
            return self._read(entry)
        except (SchemaError, UnresolvableReference) as exc:
            raise OperationError(str(exc)) from None

    def _parameters(self, entry: OperationEntry) -> list[_Parameter]:
        found: dict[tuple[str, str], _Parameter] = {}
        own = entry.node.get("parameters") or []
        if not isinstance(own, list):
            raise OperationError("'parameters' must be a list")
        for raw in [*entry.path_parameters, *own]:  # the operation's own win over the path item's
            node, resolver, _ = self.document.follow(raw, entry.resolver)
            if not isinstance(node, Mapping) or not isinstance(node.get("name"), str) \
                    or node.get("in") not in ("path", "query", "header", "cookie"):
                raise OperationError("a parameter needs a string 'name' and 'in' (path, query, header or cookie)")
            found[(node["name"], node["in"])] = _Parameter(node["name"], node["in"], node, resolver)
        return list(found.values())

    def _parameter_schema(self, parameter: _Parameter, shown_as: str | None) -> tuple[dict[str, Any], bool]:
        node = parameter.node
        json_encoded = False
        if "schema" in node:
            schema = self.schemas.convert(node["schema"], parameter.resolver)
        elif isinstance(node.get("content"), Mapping) and len(node["content"]) == 1:
            media, spec = next(iter(node["content"].items()))
            if not _JSON_MEDIA.match(str(media)):
                raise OperationError(f"parameter '{parameter.name}' is sent as {media}, which tools do not write",
                                     unsupported=True)
            media_node, media_resolver, _ = self.document.follow(spec, parameter.resolver)
            raw_schema = media_node.get("schema", {}) if isinstance(media_node, Mapping) else {}
            schema = self.schemas.convert(raw_schema, media_resolver)
            json_encoded = True
        else:
            raise OperationError(f"parameter '{parameter.name}' has neither 'schema' nor one 'content' entry")
        extra: dict[str, Any] = {}
        own = node["description"].strip() if isinstance(node.get("description"), str) else ""
        description = own or str(schema.get("description") or "")
        if shown_as:
            description = f"{description} {shown_as}".strip()
        if description and description != schema.get("description"):
            extra["description"] = description
        if node.get("deprecated") is True:
            extra["deprecated"] = True
        if "example" in node and "examples" not in schema:
            extra["examples"] = [node["example"]]
        return ({**schema, **extra} if extra else schema), json_encoded

    def _body(self, entry: OperationEntry) -> tuple[dict[str, Any] | None, bool, list[str]]:
        raw = entry.node.get("requestBody")
        if raw is None:
            return None, False, []
        node, resolver, _ = self.document.follow(raw, entry.resolver)
        if not isinstance(node, Mapping) or not isinstance(node.get("content"), Mapping):
            raise OperationError("'requestBody' needs a 'content' object")
        required = node.get("required") is True
        content = node["content"]
        media = next((m for m in content if _JSON_MEDIA.match(str(m))), None)
        media = media or next((m for m in content if str(m) in ("*/*", "application/*")), None)
        if media is None:
            kinds = ", ".join(str(m) for m in content) or "none"
            if required:
                raise OperationError(f"its request body is sent as {kinds}; tools send JSON bodies only",
                                     unsupported=True)
            return None, False, [f"its optional request body ({kinds}) is not sent: tools send JSON bodies only"]
        media_node, media_resolver, _ = self.document.follow(content[media], resolver)
        raw_schema = media_node.get("schema", {}) if isinstance(media_node, Mapping) else {}
        schema = self.schemas.convert(raw_schema, media_resolver)
        if isinstance(node.get("description"), str) and "description" not in schema:
            schema = {**schema, "description": node["description"].strip()}
        return schema, required, []

    def _read(self, entry: OperationEntry) -> Operation:
        warnings: list[str] = []
        parameters = self._parameters(entry)
        body_schema, body_required, body_notes = self._body(entry)
        warnings.extend(body_notes)
        if body_schema is not None and entry.method == "GET":
            raise OperationError("a GET operation with a request body cannot be sent", unsupported=True)
        used = set(RESERVED_ARGUMENT_NAMES) | ({"body"} if body_schema is not None else set())
        properties: dict[str, Any] = {}
        required: list[str] = []
        arguments: list[Argument] = []
        declared_path = set(Template(entry.path).parameters)
        for parameter in parameters:
            location = parameter.location
            if location in ("header", "cookie"):
                if parameter.node.get("required") is True:
                    warnings.append(f"the required {location} parameter '{parameter.name}' is not sent by the tool")
                continue
            if location == "path" and parameter.name not in declared_path:
                warnings.append(f"the path parameter '{parameter.name}' is not in the path template: left out")
                continue
            name = _argument_name(parameter.name, location, used)  # type: ignore[arg-type]
            used.add(name)
            shown_as = None if name == parameter.name else f"(the {location} parameter '{parameter.name}')"
            schema, json_encoded = self._parameter_schema(parameter, shown_as)
            style = str(parameter.node.get("style") or ("simple" if location == "path" else "form"))
            if location == "path" and style != "simple":
                raise OperationError(f"path parameter '{parameter.name}' uses style '{style}'; tools fill in "
                                     "path parameters in the 'simple' style only", unsupported=True)
            if location == "query" and style not in ("form", "spaceDelimited", "pipeDelimited", "deepObject"):
                raise OperationError(f"query parameter '{parameter.name}' has an unknown style '{style}'")
            explode = parameter.node.get("explode")
            is_required = location == "path" or parameter.node.get("required") is True
            arguments.append(Argument(name, parameter.name, location, is_required, style,  # type: ignore[arg-type]
                                      explode if isinstance(explode, bool) else style == "form", json_encoded))
            properties[name] = schema
            if is_required:
                required.append(name)
        missing = declared_path - {a.wire_name for a in arguments if a.location == "path"}
        if missing:
            raise OperationError(f"the path template names {', '.join(sorted(missing))} but no such path "
                                 "parameter is declared")
        try:  # the template's own text must pass the checks every call's path passes
            resolve_path("/", Template(entry.path).expand(dict.fromkeys(declared_path, "x")))
        except InvalidToolArgumentsError as exc:
            raise OperationError(f"the path template cannot be sent: {exc}") from None
        if body_schema is not None:
            arguments.append(Argument("body", "body", "body", body_required))
            properties["body"] = body_schema
            if body_required:
                required.append("body")
        if entry.method != "GET":
            properties["idempotency_key"] = dict(IDEMPOTENCY_ARGUMENT)
        args_schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            args_schema["required"] = required
        args_schema["additionalProperties"] = False
        node = entry.node
        return Operation(
            tool_name=entry.tool_name,
            operation_id=entry.operation_id,
            method=entry.method,
            path=entry.path,
            summary=_text(node.get("summary")),
            description=_text(node.get("description")),
            tags=entry.tags,
            deprecated=node.get("deprecated") is True,
            arguments=tuple(arguments),
            args_schema=args_schema,
            warnings=tuple(warnings),
        )


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
