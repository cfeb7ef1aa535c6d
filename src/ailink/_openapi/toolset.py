"""An OpenAPI document → one :class:`OperationAction` per operation, filtered and gated: :func:`convert`.

:func:`build_tools` is what ``ailink.adapters.gateway_tools`` (and so every framework's
``*_tools`` one-liner) runs: it reads the document and the token's policies, converts, and binds
every action to one shared client.
"""

from __future__ import annotations

import fnmatch
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError as InvalidJSONSchema

from ailink._openapi.action import OperationAction
from ailink._openapi.document import OpenAPIError, load_document, validate_document
from ailink._openapi.gates import Gating, OperationFacts, gate
from ailink._openapi.operations import Operation, OperationEntry, OperationError, OperationReader, entries, tool_names
from ailink._openapi.paths import Template
from ailink._tools.options import bind, client_of

if TYPE_CHECKING:
    from ailink._client import AdminClient, AIlinkClient, AsyncClient
    from ailink._models import Policy
    from ailink._tools.runner import GatewayTool

#: Longest tool description (the policy notes always stay; the document's text is cut first).
MAX_DESCRIPTION_CHARS = 1024

SkipKind = Literal["filtered", "unsupported", "denied"]


class OpenAPIConversionWarning(UserWarning):
    """Some operations of a document could not be converted (they were left out)."""


@dataclass(frozen=True)
class SkippedOperation:
    """An operation left out: ``filtered`` (by the filters), ``unsupported`` (it uses what tools do not
    send), or ``denied`` (a policy refuses every call of it)."""

    method: str
    path: str
    operation_id: str | None
    tool_name: str | None
    kind: SkipKind
    reason: str


@dataclass(frozen=True)
class ConversionError:
    """An operation that could not be converted (a broken reference, an invalid schema, ...)."""

    method: str
    path: str
    operation_id: str | None
    message: str

    def __str__(self) -> str:
        name = f" ({self.operation_id})" if self.operation_id else ""
        return f"{self.method} {self.path}{name}: {self.message}"


@dataclass
class OpenAPIConversion:
    """What :func:`convert` made of a document: the tool actions, what was left out and why."""

    title: str | None
    api_version: str | None
    openapi: str
    actions: list[OperationAction] = field(default_factory=list)
    skipped: list[SkippedOperation] = field(default_factory=list)
    errors: list[ConversionError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def action(self, name: str) -> OperationAction:
        """The action whose tool name is ``name`` (``KeyError`` when there is none)."""
        for action in self.actions:
            if action.name == name:
                return action
        raise KeyError(name)


@dataclass(frozen=True)
class Filters:
    """Which operations become tools (all of them by default)."""

    include_tags: Sequence[str] | None = None
    exclude_tags: Sequence[str] | None = None
    include_operations: Sequence[str] | None = None
    exclude_operations: Sequence[str] | None = None
    methods: Sequence[str] | None = None
    exclude_methods: Sequence[str] | None = None

    def reason(self, entry: OperationEntry) -> str | None:
        """Why ``entry`` is filtered out, or None when it stays."""
        names = [n for n in (entry.operation_id, entry.tool_name) if n]
        tags = set(entry.tags)
        if self.methods is not None and entry.method not in {m.upper() for m in self.methods}:
            return f"method {entry.method} not in methods"
        if self.exclude_methods is not None and entry.method in {m.upper() for m in self.exclude_methods}:
            return f"method {entry.method} excluded"
        if self.include_tags is not None and not tags & set(self.include_tags):
            return "no tag in include_tags"
        if self.exclude_tags is not None and tags & set(self.exclude_tags):
            return f"tag {sorted(tags & set(self.exclude_tags))[0]!r} excluded"
        if self.include_operations is not None and not any(
                fnmatch.fnmatchcase(n, g) for n in names for g in self.include_operations):
            return "not matched by include_operations"
        if self.exclude_operations is not None and any(
                fnmatch.fnmatchcase(n, g) for n in names for g in self.exclude_operations):
            return "matched by exclude_operations"
        return None


def describe(operation: Operation, gating: Gating) -> str:
    """The tool description: the summary, how policies gate it, the method and path, the document's text."""
    head = operation.summary or operation.operation_id or f"{operation.method} {operation.path}"
    parts = [head if head.endswith((".", "!", "?")) else head + "."]
    if gating.gates:
        parts.append(gating.describe())
    if operation.deprecated:
        parts.append("Deprecated.")
    parts.append(f"({operation.method} {operation.path})")
    text = " ".join(parts)
    detail = operation.description if operation.description and operation.description != operation.summary else ""
    if detail:
        room = MAX_DESCRIPTION_CHARS - len(text) - 2
        if room > 20:
            text += "\n\n" + (detail if len(detail) <= room else detail[: room - 1] + "…")
    return text


def convert(
    openapi: Mapping[str, Any] | str | os.PathLike[str],
    *,
    base_path: str = "/",
    filters: Filters | None = None,
    policies: Sequence[Policy | Mapping[str, Any]] | None = None,
    agent_name: str | None = None,
    omit_denied: bool = True,
    name_prefix: str = "",
    max_response_chars: int = 4000,
    client: AIlinkClient | AsyncClient | None = None,
    validate: bool = False,
) -> OpenAPIConversion:
    """Convert an OpenAPI 3.0/3.1 document (a dict, a file path or an ``http(s)`` URL) into tool actions.

    ``base_path`` is where the API sits on the gateway (``/`` for a token whose upstream is the
    API, ``/v1/proxy/services/<name>`` for a registered service). ``policies`` (the token's) mark
    the operations they may deny or hold for approval; with ``omit_denied`` an operation every
    call of which is denied is left out. ``client`` fetches a URL the gateway serves (with its
    token). Raises :class:`OpenAPIError` only when the document itself cannot be read; an
    operation that cannot be converted is listed in ``errors``.
    """
    document = load_document(openapi, client)
    if validate:
        validate_document(document)
    raw_info = document.contents.get("info")
    info: Mapping[str, Any] = raw_info if isinstance(raw_info, Mapping) else {}
    conversion = OpenAPIConversion(title=_str(info.get("title")), api_version=_str(info.get("version")),
                                   openapi=document.version)
    reader = OperationReader(document)
    filters = filters or Filters()
    found: list[OperationEntry] = []
    for item in entries(document):
        if isinstance(item, OperationEntry):
            found.append(item)
        else:
            conversion.errors.append(ConversionError(item[0], item[1], None, item[2]))
    checked: set[str] = set()
    for entry in tool_names(found, name_prefix):
        why = filters.reason(entry)
        if why is not None:
            conversion.skipped.append(_skipped(entry, "filtered", why))
            continue
        try:
            operation = reader.read(entry)
            _check_schema(operation.args_schema, checked)
        except OperationError as exc:
            if exc.unsupported:
                conversion.skipped.append(_skipped(entry, "unsupported", str(exc)))
            else:
                conversion.errors.append(ConversionError(entry.method, entry.path, entry.operation_id, str(exc)))
            continue
        except InvalidJSONSchema as exc:
            where = "/".join(str(p) for p in exc.absolute_schema_path)
            conversion.errors.append(ConversionError(entry.method, entry.path, entry.operation_id,
                                                     f"the argument schema is not valid JSON Schema at {where}: "
                                                     f"{str(exc.message)[:200]}"))
            continue
        conversion.warnings.extend(f"{entry.method} {entry.path}: {w}" for w in operation.warnings)
        facts = OperationFacts(method=operation.method, path=Template.of(base_path, operation.path),
                               tool_name=operation.tool_name, agent_name=agent_name,
                               has_body=any(a.location == "body" for a in operation.arguments),
                               query={a.wire_name: a.required for a in operation.arguments if a.location == "query"},
                               open_query=_spreads_objects(operation))
        gating = gate(policies or [], facts)
        if gating.denied and omit_denied:
            reasons = "; ".join(g.describe() for g in gating.gates if g.action == "deny" and g.always)
            conversion.skipped.append(_skipped(entry, "denied", reasons))
            continue
        conversion.actions.append(OperationAction(
            name=operation.tool_name, description=describe(operation, gating), methods=(operation.method,),
            base_path=base_path, max_response_chars=max_response_chars, operation=operation, gating=gating))
    return conversion


def _spreads_objects(operation: Operation) -> bool:
    """True when a query argument may be an object sent as keys of its own (deepObject, or form exploded)."""
    properties = operation.args_schema.get("properties") or {}
    for argument in operation.arguments:
        if argument.location != "query" or argument.json_encoded:
            continue
        kind = properties.get(argument.name, {}).get("type")
        scalar = kind in ("string", "integer", "number", "boolean", "array") or (
            isinstance(kind, list) and "object" not in kind)
        if argument.style == "deepObject" or (argument.explode and not scalar):
            return True
    return False


def _check_schema(schema: dict[str, Any], checked: set[str]) -> None:
    """``schema`` against the JSON Schema 2020-12 metaschema, each distinct argument schema once per
    conversion (the metaschema judges a subschema the same wherever it stands)."""
    properties = schema.get("properties") or {}
    for sub in properties.values():
        key = json.dumps(sub, sort_keys=True, default=repr)
        if key not in checked:
            Draft202012Validator.check_schema(sub)
            checked.add(key)  # the object around the arguments is the reader's own, always valid


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _skipped(entry: OperationEntry, kind: SkipKind, reason: str) -> SkippedOperation:
    return SkippedOperation(entry.method, entry.path, entry.operation_id, entry.tool_name or None, kind, reason)


def policies_for_token(admin: AdminClient, token: str) -> list[Policy]:
    """The policies attached to ``token``, in its order, read through the management API."""
    wanted = admin.tokens.get(token).policy_ids
    if not wanted:
        return []
    known = {p.id: p for p in admin.policies.list()}
    return [known[pid] if pid in known else admin.policies.get(pid) for pid in wanted]


def _token_policies(options: Mapping[str, Any], client: AIlinkClient | AsyncClient) -> Sequence[Any] | None:
    if options.get("policies") is not None:
        return list(options["policies"])
    admin = options.get("admin")
    admin_key = options.get("admin_key")
    if admin is None and admin_key is None:
        return None
    token = client.settings.api_key
    if not token:
        raise OpenAPIError("reading the token's policies needs the token (token= or a client that has one)")
    if admin is not None:
        return policies_for_token(admin, token)
    from ailink._client import AIlinkClient

    own = AIlinkClient.admin(admin_key=admin_key, gateway_url=client.settings.gateway_url)
    try:
        return policies_for_token(own, token)
    finally:
        own.close()


def build_tools(options: dict[str, Any]) -> list[GatewayTool]:
    """The tools of ``ailink.adapters.gateway_tools`` (its options, already checked)."""
    client = client_of(options)
    filters = Filters(**{k: options.get(k) for k in ("include_tags", "exclude_tags", "include_operations",
                                                      "exclude_operations", "methods", "exclude_methods")})
    conversion = convert(
        options["openapi"],
        base_path=options.get("base_path") or "/",
        filters=filters,
        policies=_token_policies(options, client),
        agent_name=client.settings.agent_name,
        omit_denied=options.get("omit_denied", True),
        name_prefix=options.get("name_prefix") or "",
        max_response_chars=options.get("max_response_chars") or 4000,
        client=client,
        validate=bool(options.get("validate", False)),
    )
    if conversion.errors:
        listed = "; ".join(str(e) for e in conversion.errors[:5])
        more = f" (and {len(conversion.errors) - 5} more)" if len(conversion.errors) > 5 else ""
        if options.get("strict"):
            raise OpenAPIError(f"{len(conversion.errors)} operation(s) could not be converted: {listed}{more}")
        warnings.warn(f"{len(conversion.errors)} operation(s) left out, they could not be converted: {listed}{more}",
                      OpenAPIConversionWarning, stacklevel=3)
    return [bind(action, client, options.get("approval_timeout")) for action in conversion.actions]
