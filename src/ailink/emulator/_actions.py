"""Policy actions beyond allow/deny/require_approval/rate_limit, as the real gateway applies them
(``shared/reference/gateway-wire-contract.md`` §7.3, §9.2).

At create time :func:`validate_action` checks one action (a :class:`~._policy.PolicyError`, so 422,
naming the action and the field); actions the real gateway knows but the emulator does not implement
(:data:`NOT_IMPLEMENTED`) are refused the same way, by name. At request time the proxy hands every
matched action of an enforced pre-phase rule, in rule order, to :func:`apply`, which fills in one
:class:`Plan` or raises :class:`ActionRefused`:

* ``tool_scope {allowed_tools, blocked_tools, deny_message}``: the tool names an LLM request declares
  (OpenAI ``tools[].function.name``, Anthropic ``tools[].name``, Gemini
  ``tools[].function_declarations[].name``, ``tool_choice.function.name``, ``tool_calls[].function.name``)
  against ``blocked_tools`` first, then ``allowed_tools`` (exact or glob; empty = any) → 403
  ``policy_denied`` "… tool 'x' is blocked" / "… is not in the allowed list".
* ``redact {direction: request|response|both, patterns, fields, on_match: redact|block}``: named PII
  patterns (``_pii``) or RE2 regexes replaced in every string, ``fields`` (keys at any depth) blanked
  to ``[REDACTED]``; ``block`` refuses with 403 ``content_blocked`` instead. Response redaction applies
  to complete (non-streamed) JSON answers.
* ``transform {operations}``: ``set_header``/``remove_header`` (on what is forwarded upstream),
  ``append_system_prompt``/``prepend_system_prompt``, ``regex_replace``, ``set_body_field``/
  ``remove_body_field`` (dot paths), ``add_to_message_list``.
* ``override {set_body_fields}``; ``split {variants: [{weight, set_body_fields, name?}], experiment?}``
  (one variant per request, weighted, chosen from the request id; recorded on the audit row).
* ``throttle {delay_ms}``: the request waits before going on.
* ``log {level, tags}`` and ``tag {key, value}``: logged (logger ``ailink.emulator.policy``) and, unlike
  the real gateway, kept on the audit row as ``policy_tags``.
"""

from __future__ import annotations

import json
import logging
import random
import re
from dataclasses import dataclass, field
from typing import Any

from ailink._policy_match import glob_regex

from ._pii import PII_PATTERNS, map_strings, redact_text
from ._policy import PolicyError, compile_regex

logger = logging.getLogger("ailink.emulator.policy")

SUPPORTED = frozenset({"tool_scope", "redact", "transform", "override", "split", "throttle", "log", "tag"})
#: Actions of the real gateway the emulator does not implement: refused at create time, by name.
#: (``webhook`` and ``dynamic_route`` are implemented elsewhere: ``_webhooks``, ``_routing``.)
NOT_IMPLEMENTED = frozenset({"content_filter", "conditional_route", "validate_schema", "external_guardrail"})
#: Headers a transform may not set (the real gateway ignores such operations).
RESERVED_HEADERS = frozenset({"authorization", "host", "cookie", "set-cookie", "x-admin-key", "content-length",
                              "transfer-encoding", "connection"})
TRANSFORM_OPS = ("set_header", "remove_header", "append_system_prompt", "prepend_system_prompt", "regex_replace",
                 "set_body_field", "remove_body_field", "add_to_message_list")
MAX_DELAY_MS = 60_000
LOG_LEVELS = {"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
              "warning": logging.WARNING, "error": logging.ERROR}
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")
#: Marks a request whose body is not a JSON document (body operations then do nothing).
NOT_JSON = object()


class ActionRefused(Exception):
    """An action refuses the request (or its answer): the gateway error to send instead."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


@dataclass
class Plan:
    """What the matched actions ask of one request, filled in rule order by :func:`apply`."""

    #: The parsed JSON body (or :data:`NOT_JSON`); actions replace it, never mutate it in place.
    body: Any
    #: Seeds the choice of a ``split`` variant (the request id: the same request, the same variant).
    seed: str
    body_changed: bool = False
    set_headers: dict[str, str] = field(default_factory=dict)
    remove_headers: list[str] = field(default_factory=list)
    delay: float = 0.0
    #: ``[policy name, action]`` of the ``redact`` actions that apply to the answer.
    response_actions: list[list[Any]] = field(default_factory=list)
    experiment: str | None = None
    variant: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def set_body(self, body: Any) -> None:
        self.body = body
        self.body_changed = True


# --------------------------------------------------------------------------- validation


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}: must be a list of strings")
    return value


def _string(action: dict[str, Any], name: str, where: str, *, required: bool = True) -> None:
    if name not in action:
        if required:
            raise PolicyError(f"{where}: '{name}' is required")
        return
    if not isinstance(action[name], str):
        raise PolicyError(f"{where}.{name}: must be a string")


def _regex(pattern: str, where: str) -> None:
    try:
        compile_regex(pattern)
    except PolicyError as exc:
        raise PolicyError(f"{where}: {exc}") from None


def _fields(value: Any, where: str) -> None:
    if not isinstance(value, dict) or not value:
        raise PolicyError(f"{where}: must be a non-empty object of body fields")


def validate_action(kind: str, action: dict[str, Any], where: str) -> None:
    """Check one action of a :data:`SUPPORTED` kind; raises :class:`PolicyError` naming the field."""
    where = f"{where} ({kind})"
    if kind == "tool_scope":
        for name in ("allowed_tools", "blocked_tools"):
            for pattern in _strings(action.get(name, []), f"{where}.{name}"):
                _regex(glob_regex(pattern), f"{where}.{name}")
        _string(action, "deny_message", where, required=False)
    elif kind == "redact":
        if action.get("direction", "both") not in ("request", "response", "both"):
            raise PolicyError(f"{where}.direction: 'request', 'response' or 'both'")
        on_match = action.get("on_match", "redact")
        if on_match == "tokenize":
            raise PolicyError(f"{where}.on_match: 'tokenize' is not implemented by the emulator (use 'redact' or "
                              "'block')")
        if on_match not in ("redact", "block"):
            raise PolicyError(f"{where}.on_match: 'redact' or 'block'")
        for pattern in _strings(action.get("patterns", []), f"{where}.patterns"):
            if pattern not in PII_PATTERNS:
                _regex(pattern, f"{where}.patterns")
        _strings(action.get("fields", []), f"{where}.fields")
    elif kind == "transform":
        operations = action.get("operations")
        if not isinstance(operations, list) or not operations:
            raise PolicyError(f"{where}.operations: must be a non-empty list")
        for i, op in enumerate(operations):
            _validate_operation(op, f"{where}.operations[{i}]")
    elif kind == "override":
        _fields(action.get("set_body_fields"), f"{where}.set_body_fields")
    elif kind == "split":
        variants = action.get("variants")
        if not isinstance(variants, list) or not variants:
            raise PolicyError(f"{where}.variants: must be a non-empty list")
        for i, variant in enumerate(variants):
            at = f"{where}.variants[{i}]"
            if not isinstance(variant, dict):
                raise PolicyError(f"{at}: must be an object")
            weight = variant.get("weight")
            if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
                raise PolicyError(f"{at}.weight: must be a non-negative integer")
            _fields(variant.get("set_body_fields"), f"{at}.set_body_fields")
            _string(variant, "name", at, required=False)
        if not any(v["weight"] for v in variants):
            raise PolicyError(f"{where}.variants: at least one weight must be positive")
        _string(action, "experiment", where, required=False)
    elif kind == "throttle":
        delay = action.get("delay_ms")
        if not isinstance(delay, int) or isinstance(delay, bool) or not 0 <= delay <= MAX_DELAY_MS:
            raise PolicyError(f"{where}.delay_ms: an integer between 0 and {MAX_DELAY_MS}")
    elif kind == "log":
        if str(action.get("level", "warn")).lower() not in LOG_LEVELS:
            raise PolicyError(f"{where}.level: one of {', '.join(LOG_LEVELS)}")
        tags = action.get("tags", {})
        if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
            raise PolicyError(f"{where}.tags: must be an object of strings")
    elif kind == "tag":
        _string(action, "key", where)
        _string(action, "value", where)


def _validate_operation(op: Any, where: str) -> None:
    if not isinstance(op, dict):
        raise PolicyError(f"{where}: must be an object with a 'type'")
    kind = op.get("type")
    if kind not in TRANSFORM_OPS:
        raise PolicyError(f"{where}.type: one of {', '.join(TRANSFORM_OPS)}")
    where = f"{where} ({kind})"
    if kind in ("set_header", "remove_header"):
        _string(op, "name", where)
        if not _HEADER_NAME.match(op["name"]):
            raise PolicyError(f"{where}.name: not a header name")
        if kind == "set_header":
            if op["name"].lower() in RESERVED_HEADERS:
                raise PolicyError(f"{where}.name: the header {op['name']!r} cannot be set by a policy")
            _string(op, "value", where)
            if any(ch in op["value"] for ch in "\r\n\0"):
                raise PolicyError(f"{where}.value: must not contain line breaks")
    elif kind in ("append_system_prompt", "prepend_system_prompt"):
        _string(op, "text", where)
    elif kind == "regex_replace":
        _string(op, "pattern", where)
        _string(op, "replacement", where)
        _regex(op["pattern"], f"{where}.pattern")
        if not isinstance(op.get("global", True), bool):
            raise PolicyError(f"{where}.global: must be true or false")
    elif kind in ("set_body_field", "remove_body_field"):
        _string(op, "path", where)
        if not op["path"] or any(not part for part in op["path"].split(".")):
            raise PolicyError(f"{where}.path: a dot path such as 'temperature' or 'metadata.team'")
        if kind == "set_body_field" and "value" not in op:
            raise PolicyError(f"{where}: 'value' is required")
    elif kind == "add_to_message_list":
        _string(op, "role", where)
        _string(op, "content", where)
        if op.get("position", "before_last") not in ("first", "last", "before_last"):
            raise PolicyError(f"{where}.position: 'first', 'last' or 'before_last'")


# --------------------------------------------------------------------------- request time


def apply(policy: str, action: dict[str, Any], plan: Plan) -> None:
    """Apply one matched action of ``policy`` to ``plan`` (or raise :class:`ActionRefused`)."""
    kind = action.get("action")
    if kind == "tool_scope":
        _tool_scope(policy, action, plan.body)
    elif kind == "redact":
        if action.get("direction", "both") in ("request", "both") and plan.body is not NOT_JSON:
            redacted = redact_document(policy, action, plan.body)
            if redacted is not plan.body:
                plan.set_body(redacted)
        if action.get("direction", "both") in ("response", "both"):
            plan.response_actions.append([policy, action])
    elif kind == "transform":
        for op in action["operations"]:
            _transform(op, plan)
    elif kind == "override":
        _set_fields(plan, action["set_body_fields"])
    elif kind == "split":
        variants = action["variants"]
        chosen = random.Random(plan.seed).choices(range(len(variants)), [v["weight"] for v in variants])[0]
        _set_fields(plan, variants[chosen]["set_body_fields"])
        plan.experiment = action.get("experiment") or policy
        plan.variant = variants[chosen].get("name") or f"variant-{chosen}"
    elif kind == "throttle":
        plan.delay += action["delay_ms"] / 1000.0
    elif kind == "log":
        tags = {str(k): str(v) for k, v in (action.get("tags") or {}).items()}
        level = LOG_LEVELS.get(str(action.get("level", "warn")).lower(), logging.WARNING)
        logger.log(level, "policy %s matched (tags %s)", policy, tags)
        plan.tags.update(tags)
    elif kind == "tag":
        logger.info("policy %s tagged the request %s=%s", policy, action["key"], action["value"])
        plan.tags[action["key"]] = action["value"]


def _set_fields(plan: Plan, fields: dict[str, Any]) -> None:
    if isinstance(plan.body, dict):
        plan.set_body({**plan.body, **fields})


# tool_scope -------------------------------------------------------------------------------


def _matches(name: str, patterns: list[str]) -> bool:
    """``name`` equals one of ``patterns`` or matches it as a glob (``*``, ``?``)."""
    return any(p == name or compile_regex(glob_regex(p)).fullmatch(name) is not None for p in patterns)


def declared_tools(body: Any) -> list[str]:
    """The tool names an LLM request declares or calls (OpenAI, Anthropic and Gemini shapes)."""
    if not isinstance(body, dict):
        return []
    names: list[str] = []
    for tool in _list(body.get("tools")):
        if not isinstance(tool, dict):
            continue
        function = tool.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.append(function["name"])
        elif isinstance(tool.get("name"), str):
            names.append(tool["name"])
        for declaration in _list(tool.get("function_declarations")):
            if isinstance(declaration, dict) and isinstance(declaration.get("name"), str):
                names.append(declaration["name"])
    for named in [body.get("tool_choice"), *_list(body.get("tool_calls"))]:
        function = named.get("function") if isinstance(named, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.append(function["name"])
    return names


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _tool_scope(policy: str, action: dict[str, Any], body: Any) -> None:
    blocked = action.get("blocked_tools") or []
    allowed = action.get("allowed_tools") or []
    message = action.get("deny_message") or "tool not authorized for this agent"
    for name in declared_tools(body):
        if _matches(name, blocked):
            reason = f"{message}: tool '{name}' is blocked"
        elif allowed and not _matches(name, allowed):
            reason = f"{message}: tool '{name}' is not in the allowed list"
        else:
            continue
        raise ActionRefused(403, "policy_denied", f"Request blocked by policy '{policy}': {reason}",
                            {"policy": policy, "reason": reason, "tool": name})


# redact -----------------------------------------------------------------------------------


def redact_document(policy: str, action: dict[str, Any], doc: Any, *, phase: str = "request") -> Any:
    """``doc`` with the action's patterns and fields redacted (the same object when nothing matched);
    with ``on_match: block`` a match raises :class:`ActionRefused` (403 ``content_blocked``)."""
    named = tuple(p for p in action.get("patterns") or [] if p in PII_PATTERNS)
    custom = [(p, compile_regex(p)) for p in action.get("patterns") or [] if p not in PII_PATTERNS]
    fields = set(action.get("fields") or [])
    matched: set[str] = set()

    def scrub(text: str) -> str:
        text = redact_text(text, named, matched)
        for pattern, compiled in custom:
            replaced = compiled.sub(f"[REDACTED_{pattern.upper()}]".replace("\\", "\\\\"), text)
            if replaced != text:
                matched.add(pattern)
                text = replaced
        return text

    result = map_strings(doc, scrub) if named or custom else doc
    if fields:
        result = _blank_fields(result, fields, matched)
    if not matched:
        return doc
    if action.get("on_match", "redact") == "block":
        found = sorted(matched)
        details: dict[str, Any] = {"policy": policy, "detected_pii": found, "action": "block"}
        if phase == "response":
            details["phase"] = "response"
        raise ActionRefused(403, "content_blocked",
                            f"Content blocked by policy '{policy}': the {phase} contains {', '.join(found)}", details)
    return result


def _blank_fields(doc: Any, fields: set[str], matched: set[str]) -> Any:
    root: list[Any] = [doc]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        container, key = stack.pop()
        value = container[key]
        if isinstance(value, dict):
            copy = dict(value)
            container[key] = copy
            for name in list(copy):
                if name in fields:
                    copy[name] = "[REDACTED]"
                    matched.add(f"field:{name}")
                else:
                    stack.append((copy, name))
        elif isinstance(value, list):
            copy_list = list(value)
            container[key] = copy_list
            stack.extend((copy_list, i) for i in range(len(copy_list)))
    return root[0]


def redact_answer(response_actions: list[list[Any]], content_type: str, body: bytes) -> bytes:
    """A complete upstream answer with the response-direction ``redact`` actions applied (JSON answers only);
    a ``block`` match raises :class:`ActionRefused`."""
    if not response_actions or "json" not in content_type.lower():
        return body
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return body
    original = doc
    for policy, action in response_actions:
        doc = redact_document(policy, action, doc, phase="response")
    if doc is original:
        return body
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# transform --------------------------------------------------------------------------------


def _transform(op: dict[str, Any], plan: Plan) -> None:
    kind = op["type"]
    if kind == "set_header":
        name = op["name"].lower()
        plan.set_headers[name] = op["value"]
        if name in plan.remove_headers:
            plan.remove_headers.remove(name)
        return
    if kind == "remove_header":
        name = op["name"].lower()
        plan.set_headers.pop(name, None)
        if name not in plan.remove_headers:
            plan.remove_headers.append(name)
        return
    body = plan.body
    if not isinstance(body, dict):
        return
    if kind in ("append_system_prompt", "prepend_system_prompt"):
        plan.set_body(_system_prompt(body, op["text"], append=kind == "append_system_prompt"))
    elif kind == "regex_replace":
        compiled = compile_regex(op["pattern"])
        replacement = _python_replacement(op["replacement"])
        count = 0 if op.get("global", True) else 1
        changed = map_strings(body, lambda text: compiled.sub(replacement, text, count=count))
        if changed != body:
            plan.set_body(changed)
    elif kind == "set_body_field":
        plan.set_body(_with_path(body, op["path"].split("."), op["value"]))
    elif kind == "remove_body_field":
        plan.set_body(_with_path(body, op["path"].split("."), _REMOVE))
    elif kind == "add_to_message_list":
        messages = body.get("messages")
        if isinstance(messages, list):
            message = {"role": op["role"], "content": op["content"]}
            position = op.get("position", "before_last")
            at = 0 if position == "first" else len(messages) if position == "last" else max(0, len(messages) - 1)
            plan.set_body({**body, "messages": [*messages[:at], message, *messages[at:]]})


_REMOVE = object()


def _with_path(doc: dict[str, Any], parts: list[str], value: Any) -> dict[str, Any]:
    """A copy of ``doc`` with the dot path set to ``value`` (intermediate objects created) or removed."""
    head, rest = parts[0], parts[1:]
    out = dict(doc)
    if not rest:
        if value is _REMOVE:
            out.pop(head, None)
        else:
            out[head] = value
        return out
    child = out.get(head)
    if not isinstance(child, dict):
        if value is _REMOVE:
            return out
        child = {}
    out[head] = _with_path(child, rest, value)
    return out


def _system_prompt(body: dict[str, Any], text: str, *, append: bool) -> dict[str, Any]:
    def joined(current: str) -> str:
        if not current:
            return text
        return f"{current}\n{text}" if append else f"{text}\n{current}"

    if isinstance(body.get("system"), str):  # Anthropic-style top-level system prompt
        return {**body, "system": joined(body["system"])}
    messages = body.get("messages")
    if not isinstance(messages, list):
        return body
    for i, message in enumerate(messages):
        if isinstance(message, dict) and message.get("role") == "system" and isinstance(message.get("content"), str):
            updated = {**message, "content": joined(message["content"])}
            return {**body, "messages": [*messages[:i], updated, *messages[i + 1:]]}
    return {**body, "messages": [{"role": "system", "content": text}, *messages]}


def _python_replacement(replacement: str) -> str:
    """A Rust-regex replacement (``$1``, ``${name}``, ``$$``) in Python's syntax (``\\g<1>``)."""
    out: list[str] = []
    i = 0
    while i < len(replacement):
        ch = replacement[i]
        if ch == "\\":
            out.append("\\\\")
        elif ch == "$" and i + 1 < len(replacement):
            nxt = replacement[i + 1]
            if nxt == "$":
                out.append("$")
                i += 1
            elif nxt == "{" and "}" in replacement[i + 2:]:
                end = replacement.index("}", i + 2)
                out.append(f"\\g<{replacement[i + 2:end]}>")
                i = end
            elif nxt.isalnum() or nxt == "_":
                j = i + 1
                while j < len(replacement) and (replacement[j].isalnum() or replacement[j] == "_"):
                    j += 1
                out.append(f"\\g<{replacement[i + 1:j]}>")
                i = j - 1
            else:
                out.append("$")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


__all__ = ["NOT_IMPLEMENTED", "NOT_JSON", "SUPPORTED", "ActionRefused", "Plan", "apply",
           "declared_tools", "redact_answer", "redact_document", "validate_action"]
