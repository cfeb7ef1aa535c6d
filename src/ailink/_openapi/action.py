"""``OperationAction``: one OpenAPI operation as a tool action with a typed argument schema.

It is a :class:`~ailink._tools.action.ToolAction` with the method and path template fixed: the
same flow, results, idempotency key and approvals as the generic tool; only what the model fills
in differs. Arguments are validated against the operation's JSON Schema (``jsonschema``) before
anything is sent, and refused with a message naming each problem without echoing values.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import pydantic
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from ailink._errors import InvalidToolArgumentsError
from ailink._openapi.gates import Gating
from ailink._openapi.operations import Argument, Operation
from ailink._openapi.paths import Template, check_path_value
from ailink._tools.action import (
    ParsedCall,
    ToolAction,
    check_target_length,
    checked_key,
    load_arguments,
    resolve_path,
)

#: How many problems an invalid-arguments answer names at most.
MAX_REPORTED_PROBLEMS = 5


class SchemaArguments(pydantic.BaseModel):
    """The pydantic form of a generated tool's arguments, for frameworks whose tool classes take a
    model: its ``model_json_schema()`` is the operation's JSON Schema and it accepts any object
    (the core validates against the schema before sending)."""

    model_config = pydantic.ConfigDict(extra="allow")
    json_schema: ClassVar[dict[str, Any]] = {"type": "object"}

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The operation's argument schema (a fresh copy; references are already inlined)."""
        return copy.deepcopy(cls.json_schema)


@dataclass(frozen=True, kw_only=True)
class OperationAction(ToolAction):
    """One operation of an OpenAPI document as a tool: fixed method and path template, typed arguments.

    ``gating`` says how the token's policies gate it (known before any call); the description the
    model reads already says so.
    """

    operation: Operation
    gating: Gating = field(default_factory=Gating)

    @cached_property
    def validator(self) -> Draft202012Validator:
        """The JSON Schema validator of the arguments."""
        return Draft202012Validator(self.operation.args_schema)

    @cached_property
    def args_model(self) -> type[pydantic.BaseModel]:
        """A pydantic model carrying the argument schema (see :class:`SchemaArguments`)."""
        name = "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", self.name) if p) or "Operation"
        model: type[SchemaArguments] = pydantic.create_model(f"{name}Arguments", __base__=SchemaArguments)
        model.json_schema = self.operation.args_schema
        return model

    def args_schema(self) -> dict[str, Any]:
        """The JSON Schema of the arguments (a fresh copy)."""
        return copy.deepcopy(self.operation.args_schema)

    def argument_hint(self) -> str:
        parts = [f"{a.name}{'' if a.required else '?'}" for a in self.operation.arguments]
        return "{" + ", ".join(parts) + "} as described by the tool's schema"

    def metadata(self) -> dict[str, Any]:
        return {"kind": "openapi_operation", "tool": self.name, "base_path": self.base_path,
                **self.operation.to_dict(), "approval": self.gating.to_dict()}

    def parse(self, args: Mapping[str, Any] | str | None) -> ParsedCall:
        """Validate model-given arguments against the operation's schema and build the request;
        raises :class:`InvalidToolArgumentsError` (nothing is sent)."""
        data = prune_nulls(load_arguments(args), self.operation.args_schema)
        problems = sorted(self.validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
        if problems:
            raise InvalidToolArgumentsError(describe_problems(problems))
        key = checked_key(data.get("idempotency_key"))
        path_values: dict[str, str] = {}
        query: dict[str, Any] = {}
        body: Any = None
        for argument in self.operation.arguments:
            if argument.name not in data:
                continue
            value = data[argument.name]
            if argument.location == "path":
                path_values[argument.wire_name] = check_path_value(argument.name, path_text(argument, value))
            elif argument.location == "query":
                add_query(query, argument, value)
            else:
                body = value
        path = Template(self.operation.path).expand(path_values)
        full_path = resolve_path(self.base_path, path)
        check_target_length(full_path, query)
        return ParsedCall(self.operation.method, path, full_path, query or None, body, key)


def _allows_null(schema: Any) -> bool:
    if not isinstance(schema, Mapping) or not schema:
        return True
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    if "const" in schema and schema["const"] is None:
        return True
    if isinstance(schema.get("enum"), list) and None in schema["enum"]:
        return True
    return any(_allows_null(s) for key in ("anyOf", "oneOf") for s in schema.get(key) or [])


def prune_nulls(value: Any, schema: Any) -> Any:
    """``value`` without the ``null``s a model puts in optional fields whose schema does not allow null."""
    if isinstance(value, dict) and isinstance(schema, Mapping):
        declared = schema.get("properties")
        properties: Mapping[str, Any] = declared if isinstance(declared, Mapping) else {}
        required = set(schema.get("required") or [])
        out = {}
        for key, item in value.items():
            sub = properties.get(key)
            if item is None and key not in required and sub is not None and not _allows_null(sub):
                continue
            out[key] = prune_nulls(item, sub) if sub is not None else item
        return out
    if isinstance(value, list) and isinstance(schema, Mapping) and isinstance(schema.get("items"), Mapping):
        return [prune_nulls(item, schema["items"]) for item in value]
    return value


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def path_text(argument: Argument, value: Any) -> str:
    """A path argument in the ``simple`` style: scalars as text, arrays ``a,b``, objects ``k,v`` or ``k=v``."""
    if isinstance(value, list):
        return ",".join(_scalar(v) for v in value)
    if isinstance(value, dict):
        if argument.explode:
            return ",".join(f"{k}={_scalar(v)}" for k, v in value.items())
        return ",".join(f"{k},{_scalar(v)}" for k, v in value.items())
    return _scalar(value)


def add_query(query: dict[str, Any], argument: Argument, value: Any) -> None:
    """Add a query argument as its ``style``/``explode`` say (repeated keys become lists)."""

    def put(name: str, text: str) -> None:
        if name in query:
            existing = query[name]
            query[name] = [*existing, text] if isinstance(existing, list) else [existing, text]
        else:
            query[name] = text

    name = argument.wire_name
    if argument.json_encoded:
        put(name, json.dumps(value, separators=(",", ":"), ensure_ascii=False))
    elif isinstance(value, list):
        items = [_scalar(v) for v in value]
        if argument.style == "form" and argument.explode:
            for item in items:
                put(name, item)
        else:
            put(name, {"spaceDelimited": " ", "pipeDelimited": "|"}.get(argument.style, ",").join(items))
    elif isinstance(value, dict):
        if argument.style == "deepObject":
            for key, item in value.items():
                put(f"{name}[{key}]", _scalar(item))
        elif argument.explode:
            for key, item in value.items():
                put(str(key), _scalar(item))
        else:
            put(name, ",".join(f"{k},{_scalar(v)}" for k, v in value.items()))
    else:
        put(name, _scalar(value))


def _where(error: ValidationError) -> str:
    text = ""
    for part in error.absolute_path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _quoted(names: Any) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _kind(kind: Any) -> str:
    names = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
             "object": "an object", "array": "an array", "null": "null"}
    kinds = kind if isinstance(kind, list) else [kind]
    return " or ".join(names.get(str(k), str(k)) for k in kinds)


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _what(error: ValidationError, top: bool) -> str:
    kind, expected, instance = error.validator, error.validator_value, error.instance
    expected_items: list[Any] = list(expected) if isinstance(expected, (list, tuple)) else []
    field = "argument" if top else "field"
    if kind == "required" and isinstance(instance, Mapping):
        missing = [n for n in expected_items if n not in instance]
        return f"missing required {field}{'s' if len(missing) > 1 else ''} {_quoted(missing)}"
    if kind in ("additionalProperties", "unevaluatedProperties") and isinstance(instance, Mapping):
        allowed = set((error.schema.get("properties") or {}) if isinstance(error.schema, Mapping) else ())
        extra = sorted(str(k) for k in instance if k not in allowed)
        known = f" (expected: {_quoted(sorted(allowed))})" if allowed and len(allowed) <= 20 else ""
        return f"unexpected {field}{'s' if len(extra) > 1 else ''} {_quoted(extra)}{known}"
    simple: dict[Any, Callable[[], str]] = {
        "type": lambda: f"must be {_kind(expected)}",
        "enum": lambda: f"must be one of {_short(expected)}",
        "const": lambda: f"must be {_short(expected)}",
        "minimum": lambda: f"must be >= {expected}",
        "maximum": lambda: f"must be <= {expected}",
        "exclusiveMinimum": lambda: f"must be > {expected}",
        "exclusiveMaximum": lambda: f"must be < {expected}",
        "multipleOf": lambda: f"must be a multiple of {expected}",
        "minLength": lambda: f"must be at least {expected} characters long",
        "maxLength": lambda: f"must be at most {expected} characters long",
        "pattern": lambda: f"must match the pattern {_short(expected)}",
        "minItems": lambda: f"must have at least {expected} items",
        "maxItems": lambda: f"must have at most {expected} items",
        "uniqueItems": lambda: "must not repeat items",
        "minProperties": lambda: f"must have at least {expected} fields",
        "maxProperties": lambda: f"must have at most {expected} fields",
        "not": lambda: "is not allowed here",
        "false": lambda: "is not allowed here",
    }
    if kind in simple:
        return simple[kind]()
    if kind in ("oneOf", "anyOf"):
        if kind == "oneOf" and not error.context:
            return "matches more than one of the allowed forms"
        closest = best_match(error.context) if error.context else None
        hint = f" (closest: {_describe(closest)})" if closest is not None else ""
        return f"does not match any of the allowed forms{hint}"
    return f"does not satisfy '{kind}'"


def _describe(error: ValidationError) -> str:
    where = _where(error)
    return f"{where or 'arguments'}: {_what(error, top=not where)}"


def describe_problems(errors: list[ValidationError]) -> str:
    """Readable problems (where and what, never the values the model sent)."""
    shown = [_describe(e) for e in errors[:MAX_REPORTED_PROBLEMS]]
    more = len(errors) - len(shown)
    return "; ".join(shown) + (f"; and {more} more problem{'s' if more > 1 else ''}" if more > 0 else "")
