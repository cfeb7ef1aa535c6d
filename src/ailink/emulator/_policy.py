"""Policy validation and evaluation (the subset of protocol §8 the emulator enforces).

Schema: ``{"name", "mode": "enforce"|"shadow", "phase": "pre"|"post", "rules": [{"when": cond,
"then": action | [action]}]}``. Unlike the real gateway, malformed rules are refused at create
time (:func:`validate_policy` raises :class:`PolicyError`, mapped to 422), and so are actions the
emulator does not implement (named in the error; the others are checked and applied by ``_actions``),
durations must be
positive and at most 30 days, and ``regex``/``glob`` conditions run on RE2 (linear time: no pattern
can stall the gateway). Rules read back from an older database are evaluated defensively
(:func:`effective_duration`), so nothing stored earlier can break a request or a listing.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import re2

from ailink._policy_match import compare, glob_regex

OPS = {
    "eq", "neq", "gt", "gte", "lt", "lte", "in", "glob", "regex", "contains", "exists",
    "starts_with", "ends_with",
}
#: Actions handled here and in the proxy's policy step (``webhook``: ``_webhooks``; ``dynamic_route``:
#: ``_routing``); the rest are ``_actions.SUPPORTED``.
ACTIONS = {"allow", "deny", "require_approval", "rate_limit", "webhook", "dynamic_route"}
WEBHOOK_ON_FAIL = ("allow", "deny", "log")
RATE_LIMIT_KEYS = {"per_token", "per_agent", "global"}
_DURATION = re.compile(r"^\s*(\d{1,12}(?:\.\d{1,9})?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
MAX_DURATION = 30 * 86400.0
MAX_RULES_BYTES = 65536
MAX_PATTERN_LENGTH = 4096
_MISSING = object()
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


class PolicyError(ValueError):
    """A policy document that does not follow the schema."""


def _seconds(value: Any) -> float | None:
    """A duration in seconds, unbounded; None when it is not a duration at all."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value)
    if not match:
        return None
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_duration(value: Any) -> float:
    """``"30m"``, ``"10s"``, ``"500ms"``, ``"1h"``, ``"2d"`` or a number of seconds → seconds (0 < s <= 30 days)."""
    seconds = _seconds(value)
    if seconds is None:
        raise PolicyError(f"invalid duration: {_show(value)} (use e.g. '500ms', '10s', '30m', '1h')")
    if not 0 < seconds <= MAX_DURATION:
        raise PolicyError(f"invalid duration: {_show(value)} (must be positive and at most 30 days)")
    return seconds


def effective_duration(value: Any, default: float) -> float:
    """The duration a stored rule means, never failing: unreadable → ``default``, too long → 30 days."""
    seconds = _seconds(value)
    if seconds is None or not seconds > 0:  # also NaN
        return default
    return min(seconds, MAX_DURATION)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> Any:
    return re2.compile(pattern, _RE2_OPTIONS)


def compile_regex(pattern: str) -> Any:
    """An RE2 pattern (linear-time matching; no backreferences or look-around). Raises PolicyError."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PolicyError(f"regex longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return _compiled(pattern)
    except re2.error as exc:
        raise PolicyError(f"invalid regex (RE2 syntax): {_show(str(exc))}") from None


def _validate_condition(cond: Any, where: str) -> None:
    if not isinstance(cond, dict):
        raise PolicyError(f"{where}: a condition must be an object")
    if "all" in cond or "any" in cond:
        key = "all" if "all" in cond else "any"
        items = cond[key]
        if not isinstance(items, list):
            raise PolicyError(f"{where}.{key}: must be a list of conditions")
        for i, sub in enumerate(items):
            _validate_condition(sub, f"{where}.{key}[{i}]")
        return
    if "not" in cond:
        _validate_condition(cond["not"], f"{where}.not")
        return
    if "always" in cond:
        if cond["always"] is not True:
            raise PolicyError(f"{where}.always: must be true")
        return
    if "field" in cond:
        if not isinstance(cond["field"], str) or not cond["field"]:
            raise PolicyError(f"{where}.field: must be a non-empty string")
        op = cond.get("op")
        if op not in OPS:
            raise PolicyError(f"{where}.op: unknown operator {_show(op)} (one of {', '.join(sorted(OPS))})")
        if op != "exists" and "value" not in cond:
            raise PolicyError(f"{where}: operator {op!r} needs a 'value'")
        if op == "in" and not isinstance(cond["value"], list):
            raise PolicyError(f"{where}.value: 'in' needs a list")
        if op in ("regex", "glob"):
            if not isinstance(cond["value"], str):
                raise PolicyError(f"{where}.value: '{op}' needs a string")
            try:
                compile_regex(cond["value"] if op == "regex" else glob_regex(cond["value"]))
            except PolicyError as exc:
                raise PolicyError(f"{where}.value: {exc}") from None
        return
    raise PolicyError(
        f"{where}: unknown condition shape (use all/any/not/always or field+op+value), got keys {_show(sorted(cond))}"
    )


def _checked_duration(value: Any, where: str) -> None:
    try:
        parse_duration(value)
    except PolicyError as exc:
        raise PolicyError(f"{where}: {exc}") from None


def _validate_action(action: Any, where: str) -> None:
    if not isinstance(action, dict):
        raise PolicyError(f"{where}: an action must be an object with an 'action' field")
    from ._actions import NOT_IMPLEMENTED, SUPPORTED, validate_action  # _actions builds on this module

    kind = action.get("action")
    if kind in SUPPORTED:
        validate_action(kind, action, where)
        return
    if kind in NOT_IMPLEMENTED:
        raise PolicyError(f"{where}.action: the action '{kind}' is not implemented by the emulator (it implements "
                          f"{', '.join(sorted(ACTIONS | SUPPORTED))})")
    if kind not in ACTIONS:
        raise PolicyError(f"{where}.action: unknown action {_show(kind)}")
    if kind == "require_approval":
        _checked_duration(action.get("timeout", "30m"), f"{where}.timeout")
    elif kind == "rate_limit":
        _checked_duration(action.get("window", "60s"), f"{where}.window")
        max_requests = action.get("max_requests")
        if not isinstance(max_requests, int) or isinstance(max_requests, bool) or max_requests < 0:
            raise PolicyError(f"{where}.max_requests: must be a non-negative integer")
        if action.get("key", "per_token") not in RATE_LIMIT_KEYS:
            raise PolicyError(f"{where}.key: one of {', '.join(sorted(RATE_LIMIT_KEYS))}")
    elif kind == "deny" and "message" in action and not isinstance(action["message"], str):
        raise PolicyError(f"{where}.message: must be a string")
    elif kind == "webhook":
        _validate_webhook(action, where)
    elif kind == "dynamic_route":  # [H15 routing]
        from ._routing import RouteConfigError, validate_route_action

        try:
            validate_route_action(action, where)
        except RouteConfigError as exc:
            raise PolicyError(str(exc)) from None


def _validate_webhook(action: dict[str, Any], where: str) -> None:
    """``{"action": "webhook", "url": http(s) URL, "timeout_ms": 1..60000 (5000), "on_fail": allow|deny|log}``."""
    url = action.get("url")
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
        valid = parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise PolicyError(f"{where}.url: must be an http(s) URL")
    timeout = action.get("timeout_ms", 5000)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= 60000:
        raise PolicyError(f"{where}.timeout_ms: an integer from 1 to 60000")
    if action.get("on_fail", "allow") not in WEBHOOK_ON_FAIL:
        raise PolicyError(f"{where}.on_fail: one of {', '.join(WEBHOOK_ON_FAIL)}")


def validate_rules(rules: Any) -> None:
    if not isinstance(rules, list):
        raise PolicyError("rules: must be a list")
    if len(json.dumps(rules)) > MAX_RULES_BYTES:
        raise PolicyError(f"rules: larger than {MAX_RULES_BYTES} bytes")
    for i, rule in enumerate(rules):
        where = f"rules[{i}]"
        if not isinstance(rule, dict):
            raise PolicyError(f"{where}: must be an object")
        if "then" not in rule:
            raise PolicyError(f"{where}: missing 'then' (an action or a list of actions)")
        unknown = set(rule) - {"when", "then", "async_check"}
        if unknown:
            raise PolicyError(f"{where}: unknown keys {_show(sorted(unknown))}")
        if "when" in rule:
            _validate_condition(rule["when"], f"{where}.when")
        then = rule["then"]
        actions = then if isinstance(then, list) else [then]
        if not actions:
            raise PolicyError(f"{where}.then: empty")
        for j, action in enumerate(actions):
            _validate_action(action, f"{where}.then[{j}]")


def validate_policy(doc: dict[str, Any], *, partial: bool = False) -> None:
    if not partial or "name" in doc:
        name = doc.get("name")
        if not isinstance(name, str) or not name.strip():
            raise PolicyError("name: required non-empty string")
    if doc.get("mode", "enforce") not in ("enforce", "shadow"):
        raise PolicyError("mode: 'enforce' or 'shadow'")
    if doc.get("phase", "pre") not in ("pre", "post"):
        raise PolicyError("phase: 'pre' or 'post'")
    if not partial or "rules" in doc:
        if "rules" not in doc:
            raise PolicyError("rules: required")
        validate_rules(doc["rules"])


# --------------------------------------------------------------------------- evaluation


@dataclass
class RequestFacts:
    """What policies see of a request. ``body`` is the parsed JSON body, or :data:`NO_BODY`."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body_bytes: bytes
    body: Any
    agent_name: str | None
    token_ref: str
    token_name: str


#: ``RequestFacts.body`` of a request whose body is empty or not JSON.
NO_BODY = _MISSING


def reads_body(policies: list[dict[str, Any]]) -> bool:
    """True when an enforced pre-phase policy has a condition on ``request.body`` (or a field of it)."""

    def walk(cond: Any) -> bool:
        if not isinstance(cond, dict):
            return False
        if "all" in cond or "any" in cond:
            items = cond.get("all", cond.get("any"))
            return isinstance(items, list) and any(walk(c) for c in items)
        if "not" in cond:
            return walk(cond["not"])
        field_name = cond.get("field")
        return isinstance(field_name, str) and (field_name == "request.body" or field_name.startswith("request.body."))

    for policy in policies:
        if policy.get("mode", "enforce") != "enforce" or policy.get("phase", "pre") != "pre":
            continue
        for rule in policy.get("rules") or []:
            if isinstance(rule, dict) and walk(rule.get("when")):
                return True
    return False


def _walk(value: Any, parts: list[str]) -> Any:
    for part in parts:
        # support "items[0]" and "items.0"
        for piece in re.findall(r"[^\[\]]+|\[\d+\]", part):
            index = piece[1:-1] if piece.startswith("[") else None
            if index is not None or (isinstance(value, list) and piece.isdigit()):
                idx = int(index if index is not None else piece)
                if not isinstance(value, list) or idx >= len(value):
                    return _MISSING
                value = value[idx]
            elif isinstance(value, dict) and piece in value:
                value = value[piece]
            else:
                return _MISSING
    return value


def resolve_field(name: str, facts: RequestFacts) -> Any:
    if name == "request.method":
        return facts.method
    if name == "request.path":
        return facts.path
    if name == "request.body_size":
        return len(facts.body_bytes)
    if name == "request.body":
        return facts.body
    if name.startswith("request.body."):
        return _walk(facts.body, name[len("request.body."):].split("."))
    if name.startswith("request.headers."):
        return facts.headers.get(name[len("request.headers."):].lower(), _MISSING)
    if name.startswith("request.query."):
        return facts.query.get(name[len("request.query."):], _MISSING)
    if name == "agent.name":
        return facts.agent_name if facts.agent_name is not None else _MISSING
    if name == "token.id":
        return facts.token_ref
    if name == "token.name":
        return facts.token_name
    return _MISSING


def _check(cond: dict[str, Any], facts: RequestFacts) -> bool:
    op = cond["op"]
    actual = resolve_field(cond["field"], facts)
    if op == "exists":
        return actual is not _MISSING and actual is not None
    if actual is _MISSING:
        return False
    return compare(actual, op, cond.get("value"), _regex_or_none) is not False


def _regex_or_none(pattern: str, text: str, whole: bool) -> bool:
    try:
        compiled = compile_regex(pattern)
    except PolicyError:  # stored before RE2 was enforced: the rule fails closed (deny/approval apply)
        return True
    return (compiled.fullmatch(text) if whole else compiled.search(text)) is not None


def matches(cond: Any, facts: RequestFacts) -> bool:
    if cond is None:
        return True
    if "all" in cond:
        return all(matches(c, facts) for c in cond["all"])
    if "any" in cond:
        return any(matches(c, facts) for c in cond["any"])
    if "not" in cond:
        return not matches(cond["not"], facts)
    if "always" in cond:
        return True
    return _check(cond, facts)


@dataclass
class MatchedAction:
    policy_id: str
    policy_name: str
    mode: str
    rule_index: int
    action: dict[str, Any]


def evaluate(policies: list[dict[str, Any]], facts: RequestFacts) -> list[MatchedAction]:
    """Every matching rule's actions of every active pre-phase policy, in order (no first-match stop)."""
    out: list[MatchedAction] = []
    for policy in policies:
        if not policy.get("is_active", True) or policy.get("phase", "pre") != "pre":
            continue
        for i, rule in enumerate(policy.get("rules") or []):
            if not matches(rule.get("when"), facts):
                continue
            then = rule["then"]
            for action in then if isinstance(then, list) else [then]:
                out.append(MatchedAction(policy["id"], policy["name"], policy.get("mode", "enforce"), i, action))
    return out
