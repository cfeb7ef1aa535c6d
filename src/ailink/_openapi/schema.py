"""OpenAPI schema objects → self-contained JSON Schema (draft 2020-12) for a tool's arguments.

Every ``$ref`` is inlined, so a framework or a model provider never sees a reference; a schema that
refers to itself is expanded once and then cut (its next occurrence becomes an open schema of the
same type, described as not expanded), so recursive schemas stay finite. OpenAPI 3.0's own dialect
is translated (``nullable``, boolean ``exclusiveMinimum``/``exclusiveMaximum``, ``example``);
properties marked ``readOnly`` are dropped (they are never sent); ``allOf`` members that are plain
objects are merged into one object; annotations only OpenAPI knows (``discriminator``, ``xml``,
``x-*`` extensions) are left out. A conversion is bounded in depth and in size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ailink._openapi.document import Document, UnresolvableReference

if TYPE_CHECKING:
    from referencing._core import Resolver

#: Most schema nodes one tool's argument schema may have (inlined references included).
MAX_SCHEMA_NODES = 20_000
#: Deepest nesting of schemas followed.
MAX_SCHEMA_DEPTH = 64

_SCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_SINGLES = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
                   "unevaluatedItems", "unevaluatedProperties", "additionalItems", "contentSchema")
_DROPPED = frozenset({"discriminator", "xml", "externalDocs", "$id", "$schema", "$anchor", "$dynamicAnchor",
                      "$dynamicRef", "$recursiveRef", "$recursiveAnchor", "$comment", "$defs", "definitions",
                      "$vocabulary", "nullable", "example"})
_ANNOTATIONS = frozenset({"description", "title", "default", "examples", "deprecated", "readOnly", "writeOnly"})
_MERGEABLE = frozenset({"type", "properties", "required", "description", "title"})


class SchemaError(ValueError):
    """A schema that cannot be converted (its message says where and why)."""


@dataclass
class _Walk:
    """One conversion: the references being expanded, the size so far, the recursions cut."""

    active: set[int] = field(default_factory=set)
    nodes: int = 0
    cuts: int = 0

    def count(self, nodes: int = 1) -> None:
        self.nodes += nodes
        if self.nodes > MAX_SCHEMA_NODES:
            raise SchemaError(f"the schema is larger than {MAX_SCHEMA_NODES} nodes once its references are inlined")


def _ref_name(ref: str) -> str:
    return ref.rstrip("/").rsplit("/", 1)[-1] or ref


class SchemaConverter:
    """Converts the schema objects of one document (caching references that convert the same everywhere)."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self._cache: dict[int, tuple[dict[str, Any], int]] = {}

    def convert(self, node: Any, resolver: Resolver[Any]) -> dict[str, Any]:
        """The JSON Schema of OpenAPI schema ``node``; raises :class:`SchemaError`."""
        try:
            return self._convert(node, resolver, _Walk(), 0)
        except UnresolvableReference as exc:
            raise SchemaError(str(exc)) from None
        except RecursionError:
            raise SchemaError("the schema nests too deeply") from None

    def _convert(self, node: Any, resolver: Resolver[Any], walk: _Walk, depth: int) -> dict[str, Any]:
        if depth > MAX_SCHEMA_DEPTH:
            raise SchemaError(f"the schema nests deeper than {MAX_SCHEMA_DEPTH} levels")
        walk.count()
        if isinstance(node, bool):  # 3.1 boolean schemas
            return {} if node else {"not": {}}
        if not isinstance(node, Mapping):
            raise SchemaError(f"a schema must be an object, found {type(node).__name__}")
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return self._plain(node, resolver, walk, depth)
        target, target_resolver, last = self.document.follow(node, resolver)
        key = id(target)
        if key in walk.active:
            walk.cuts += 1
            converted = self._cut(target, last or ref)
        elif key in self._cache:
            converted, nodes = self._cache[key]
            walk.count(nodes)
        else:
            walk.active.add(key)
            cuts, nodes = walk.cuts, walk.nodes
            try:
                converted = self._convert(target, target_resolver, walk, depth + 1)
            finally:
                walk.active.discard(key)
            if walk.cuts == cuts:  # converts the same wherever it is used
                self._cache[key] = (converted, walk.nodes - nodes)
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        if not siblings or not self.document.is_31:  # 3.0 ignores what stands beside a $ref
            return converted
        extra = self._plain(siblings, resolver, walk, depth)
        if set(extra) <= _ANNOTATIONS:
            return {**converted, **extra}
        return {"allOf": [converted, extra]}

    @staticmethod
    def _cut(target: Any, ref: str) -> dict[str, Any]:
        stub: dict[str, Any] = {"description": f"{_ref_name(ref)} (recursive: not expanded further)"}
        if isinstance(target, Mapping) and isinstance(target.get("type"), str):
            stub["type"] = target["type"]
        return stub

    def _plain(self, node: Mapping[str, Any], resolver: Resolver[Any], walk: _Walk, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            if not isinstance(key, str) or key.startswith("x-") or key in _DROPPED:
                continue
            if key in _SCHEMA_MAPS:
                if not isinstance(value, Mapping):
                    raise SchemaError(f"'{key}' must be an object")
                out[key] = {str(k): self._convert(v, resolver, walk, depth + 1) for k, v in value.items()}
            elif key in _SCHEMA_LISTS:
                if not isinstance(value, list) or not value:
                    raise SchemaError(f"'{key}' must be a non-empty list of schemas")
                out[key] = [self._convert(v, resolver, walk, depth + 1) for v in value]
            elif key in _SCHEMA_SINGLES:
                if key == "items" and isinstance(value, list):  # draft-4 tuple form
                    out["prefixItems"] = [self._convert(v, resolver, walk, depth + 1) for v in value]
                elif isinstance(value, bool):  # additionalProperties: false, items: false, ...
                    out[key] = value
                elif isinstance(value, Mapping):
                    out[key] = self._convert(value, resolver, walk, depth + 1)
                else:
                    raise SchemaError(f"'{key}' must be a schema")
            else:
                out[key] = value
        return self._dialect(node, out)

    def _dialect(self, node: Mapping[str, Any], out: dict[str, Any]) -> dict[str, Any]:
        if "example" in node and "examples" not in out:
            out["examples"] = [node["example"]]
        elif "examples" in out and not isinstance(out["examples"], list):  # 3.0 had no 'examples' keyword
            del out["examples"]
        for bound, limit in (("exclusiveMaximum", "maximum"), ("exclusiveMinimum", "minimum")):
            if isinstance(out.get(bound), bool):  # 3.0: a flag on maximum/minimum
                if out[bound] and limit in out:
                    out[bound] = out.pop(limit)
                else:
                    del out[bound]
        properties = out.get("properties")
        if isinstance(properties, dict):
            hidden = {name for name, schema in properties.items() if isinstance(schema, dict)
                      and schema.get("readOnly") is True}
            if hidden:
                out["properties"] = {k: v for k, v in properties.items() if k not in hidden}
        if "required" in out:
            required = out["required"]
            if not isinstance(required, list):
                raise SchemaError("'required' must be a list of property names")
            kept = [name for name in required if isinstance(name, str)
                    and not (isinstance(properties, dict) and name in properties and name not in out["properties"])]
            if kept:
                out["required"] = list(dict.fromkeys(kept))
            else:
                del out["required"]
        if "allOf" in out:
            out = _merge_all_of(out)
        if node.get("nullable") is True and not self.document.is_31:
            out = _nullable(out)
        return out


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI 3.0 ``nullable: true`` in JSON Schema terms."""
    kind = schema.get("type")
    if isinstance(kind, str):
        nullable = {**schema, "type": [kind, "null"]}
        if isinstance(schema.get("enum"), list) and None not in schema["enum"]:
            nullable["enum"] = [*schema["enum"], None]
        return nullable
    if isinstance(kind, list):
        return {**schema, "type": kind if "null" in kind else [*kind, "null"]}
    if isinstance(schema.get("anyOf"), list) and set(schema) <= _ANNOTATIONS | {"anyOf"}:
        return {**schema, "anyOf": [*schema["anyOf"], {"type": "null"}]}
    annotations = {k: v for k, v in schema.items() if k in _ANNOTATIONS}
    rest = {k: v for k, v in schema.items() if k not in _ANNOTATIONS}
    return {"anyOf": [rest, {"type": "null"}], **annotations}


def _merge_all_of(schema: dict[str, Any]) -> dict[str, Any]:
    """``allOf`` of plain object schemas as one object schema; anything else is kept as it is."""
    outer = {k: v for k, v in schema.items() if k != "allOf"}
    members = [*schema["allOf"], {k: v for k, v in outer.items() if k in _MERGEABLE}]
    if not all(isinstance(m, dict) and set(m) <= _MERGEABLE for m in members):
        return schema
    if not set(outer) <= _MERGEABLE | _ANNOTATIONS:
        return schema
    if {m.get("type") for m in members} - {None, "object"}:
        return schema
    properties: dict[str, Any] = {}
    required: list[str] = []
    for member in members:
        for name, sub in (member.get("properties") or {}).items():
            if name in properties and properties[name] != sub:
                return schema  # the same property constrained twice: keep both constraints
            properties[name] = sub
        required.extend(r for r in member.get("required") or [] if r not in required)
    merged: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        merged["required"] = required
    description = outer.get("description") or next((m["description"] for m in members if m.get("description")), None)
    if description:
        merged["description"] = description
    merged.update({k: v for k, v in outer.items() if k in _ANNOTATIONS and k != "description"})
    if "title" in outer:
        merged["title"] = outer["title"]
    return merged
