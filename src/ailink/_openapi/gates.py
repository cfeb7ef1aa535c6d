"""Approvals known in advance: which policies of a token may deny an operation or ask a human first.

Each rule's condition is evaluated against what is known of every call of an operation before it is
made (its method, its path template, the tool name header, the agent name, whether it has a body
or a given query parameter) in three-valued logic: a rule matches *always*, *never*, or *maybe*;
for *maybe*, the part of the condition left undecided (say ``body.amount > 1000``) is kept to tell
the model when. It follows the gateway's rules (protocol §8): only enforced, active, pre-phase
policies count, a missing field matches nothing but ``not``, a deny anywhere wins. What cannot be
decided is *maybe*, never *never*: a gate may be announced that does not fire, not the reverse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from ailink._openapi.paths import ANY_CHAR, ANY_RUN, Template
from ailink._policy_match import compare

GateAction = Literal["deny", "require_approval"]


class Truth(Enum):
    """Three-valued truth of a condition over every call of an operation."""

    NEVER = 0
    MAYBE = 1
    ALWAYS = 2


@dataclass(frozen=True)
class PolicyGate:
    """One policy rule that may deny an operation or hold it for a human.

    ``always``: every call of the operation matches; otherwise ``condition`` says when (the part
    of the rule's condition not decided by the operation itself, in words).
    """

    policy: str
    action: GateAction
    always: bool
    condition: str | None = None
    timeout: str | None = None
    message: str | None = None

    def describe(self) -> str:
        """One sentence for the model."""
        when = "" if self.always or not self.condition else f" when {self.condition}"
        if self.action == "deny":
            why = f": {self.message}" if self.message else ""
            lead = "Always refused" if self.always else "May be refused"
            return f"{lead} by policy '{self.policy}'{when}{why}."
        lead = "Needs" if self.always else "May need"
        return (f"{lead} human approval (policy '{self.policy}'){when}: the call then waits for a reviewer's "
                "decision and may be rejected.")

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "action": self.action, "always": self.always, "condition": self.condition,
                "timeout": self.timeout, "message": self.message}


@dataclass(frozen=True)
class Gating:
    """How a token's policies gate one operation, known before any call."""

    gates: tuple[PolicyGate, ...] = ()

    @property
    def denied(self) -> bool:
        """Every call is refused by a policy."""
        return any(g.action == "deny" and g.always for g in self.gates)

    @property
    def approval(self) -> Literal["required", "conditional", "none"]:
        """Whether a call waits for a human: on every call, on some calls, or never."""
        approvals = [g for g in self.gates if g.action == "require_approval"]
        if any(g.always for g in approvals):
            return "required"
        return "conditional" if approvals else "none"

    def describe(self) -> str:
        """What the model is told (empty when no policy gates the operation)."""
        return " ".join(g.describe() for g in self.gates)

    def to_dict(self) -> dict[str, Any]:
        denial = "always" if self.denied else "conditional" if any(g.action == "deny" for g in self.gates) else "never"
        return {"approval": self.approval, "denied": denial, "gates": [g.to_dict() for g in self.gates]}


@dataclass(frozen=True)
class OperationFacts:
    """What is known of every call of an operation before it is made."""

    method: str
    path: Template
    tool_name: str
    agent_name: str | None
    has_body: bool
    query: Mapping[str, bool]  # query parameter → required
    #: Some query argument is an object spread into keys of its own (``filter[reason]=...``): then any
    #: query name may be sent.
    open_query: bool = False


# A condition's verdict and, for MAYBE, what remains of it.
_Verdict = tuple[Truth, Any]
_ALWAYS: _Verdict = (Truth.ALWAYS, None)
_NEVER: _Verdict = (Truth.NEVER, None)
_MISSING = object()
_UNKNOWN = object()


def _known(value: Any, op: str, expected: Any, cond: Any = None) -> _Verdict:
    """The gateway's comparison of a known value (``_MISSING`` when the field is absent)."""
    if op == "exists":
        return _ALWAYS if value is not _MISSING and value is not None else _NEVER
    if value is _MISSING:
        return _NEVER
    found = compare(value, op, expected, _pattern_test)
    if found is None:
        return Truth.MAYBE, cond
    return _ALWAYS if found else _NEVER


def _pattern_test(pattern: str, text: str, whole: bool) -> bool | None:
    """The gateway's pattern test on an operation's facts (short texts): a glob's whole-text match, a
    ``regex`` search on RE2 (linear time) when it is installed; None when it cannot be run here."""
    if whole:
        return re.fullmatch(pattern, text) is not None
    try:
        import re2  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None  # Python's own engine could backtrack for ever on a hostile pattern: stay undecided
    try:
        return re2.search(pattern, text) is not None
    except re2.error:
        return True  # the gateway fails closed on a pattern it cannot read


def _path_verdict(template: Template, op: str, expected: Any) -> _Verdict:
    if op == "exists":
        return _ALWAYS
    if not template.has_parameters:
        return _known(template.text, op, expected, {"field": "request.path", "op": op, "value": expected})
    text = str(expected)
    pattern: list[str] | None = None
    if op == "eq":
        pattern = list(text)
    elif op == "starts_with":
        pattern = [*text, ANY_RUN]
    elif op == "ends_with":
        pattern = [ANY_RUN, *text]
    elif op == "contains":
        pattern = [ANY_RUN, *text, ANY_RUN]
    elif op == "glob":
        pattern = [ANY_RUN if ch == "*" else ANY_CHAR if ch == "?" else ch for ch in text]
    elif op == "in" and isinstance(expected, list):
        verdicts = [_path_verdict(template, "eq", item)[0] for item in expected]
        return _any_of(verdicts, {"field": "request.path", "op": op, "value": expected})
    elif op == "neq":
        inner = _path_verdict(template, "eq", expected)[0]
        return _not(inner, {"field": "request.path", "op": op, "value": expected})
    if pattern is None:  # regex, ordering: decided only by the values of the parameters
        return Truth.MAYBE, {"field": "request.path", "op": op, "value": expected}
    truth = template.compare(pattern)
    return (truth, {"field": "request.path", "op": op, "value": expected}) if truth is Truth.MAYBE else (truth, None)


def _any_of(truths: list[Truth], cond: Any) -> _Verdict:
    if Truth.ALWAYS in truths:
        return _ALWAYS
    return (Truth.MAYBE, cond) if Truth.MAYBE in truths else _NEVER


def _not(truth: Truth, cond: Any) -> _Verdict:
    if truth is Truth.MAYBE:
        return Truth.MAYBE, cond
    return _NEVER if truth is Truth.ALWAYS else _ALWAYS


def _field_value(name: str, facts: OperationFacts) -> Any:
    """What every call has in ``name``: a value, ``_MISSING``, or ``_UNKNOWN`` (it varies by call)."""
    if name == "request.method":
        return facts.method
    if name in ("request.body", "request.body_size") or name.startswith("request.body."):
        if not facts.has_body:
            return 0 if name == "request.body_size" else _MISSING
        return _UNKNOWN
    if name.startswith("request.query."):
        sent = name[len("request.query."):] in facts.query or facts.open_query
        return _UNKNOWN if sent else _MISSING
    if name.startswith("request.headers."):
        header = name[len("request.headers."):].lower()
        if header in ("x-ailink-tool-name", "x-trueflow-tool-name"):
            return facts.tool_name
        if header in ("x-ailink-agent-name", "x-trueflow-agent-name") and facts.agent_name is not None:
            return facts.agent_name
        return _UNKNOWN
    if name == "agent.name":
        return facts.agent_name if facts.agent_name is not None else _UNKNOWN
    return _UNKNOWN


def evaluate(cond: Any, facts: OperationFacts) -> _Verdict:
    """The verdict of condition ``cond`` over every call of the operation, with what stays undecided."""
    if cond is None:
        return _ALWAYS
    if not isinstance(cond, Mapping):
        return Truth.MAYBE, cond
    if "all" in cond or "any" in cond:
        key = "all" if "all" in cond else "any"
        items = cond.get(key)
        if not isinstance(items, list):
            return Truth.MAYBE, cond
        verdicts = [evaluate(item, facts) for item in items]
        truths = [t for t, _ in verdicts]
        rest = [r for t, r in verdicts if t is Truth.MAYBE]
        decisive, neutral = (Truth.NEVER, Truth.ALWAYS) if key == "all" else (Truth.ALWAYS, Truth.NEVER)
        if decisive in truths:
            return decisive, None
        if not rest:
            return neutral, None
        return Truth.MAYBE, rest[0] if len(rest) == 1 else {key: rest}
    if "not" in cond:
        truth, rest = evaluate(cond["not"], facts)
        return _not(truth, {"not": rest})
    if "always" in cond:
        return _ALWAYS
    name, op = cond.get("field"), cond.get("op")
    if not isinstance(name, str) or not isinstance(op, str):
        return Truth.MAYBE, cond
    expected = cond.get("value")
    if name == "request.path":
        return _path_verdict(facts.path, op, expected)
    value = _field_value(name, facts)
    if value is _UNKNOWN:
        if op == "exists" and name.startswith("request.query.") and facts.query.get(name[len("request.query."):]):
            return _ALWAYS  # a required query parameter is always sent
        return Truth.MAYBE, cond
    return _known(value, op, expected, cond)


_OPS = {"eq": "=", "neq": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
MAX_CONDITION_CHARS = 240


def render(cond: Any) -> str:
    """A condition in words (``body.amount > 1000 and query.force exists``), at most
    :data:`MAX_CONDITION_CHARS` characters."""
    text = _render(cond, top=True)
    return text if len(text) <= MAX_CONDITION_CHARS else text[: MAX_CONDITION_CHARS - 1] + "…"


def _render(cond: Any, top: bool = False) -> str:
    if not isinstance(cond, Mapping):
        return "a condition"
    for key, joiner in (("all", " and "), ("any", " or ")):
        if key in cond and isinstance(cond[key], list):
            text = joiner.join(_render(c) for c in cond[key])
            return text if top else f"({text})"
    if "not" in cond:
        return f"not {_render(cond['not'])}"
    name = str(cond.get("field", "?"))
    shown = name[len("request."):] if name.startswith("request.") else name
    op, value = cond.get("op"), cond.get("value")
    literal = _literal(value)
    if op in _OPS:
        return f"{shown} {_OPS[op]} {literal}"
    if op == "exists":
        return f"{shown} is present"
    if op == "in":
        return f"{shown} is one of {literal}"
    words = {"glob": "matches", "regex": "matches the pattern", "contains": "contains",
             "starts_with": "starts with", "ends_with": "ends with"}
    return f"{shown} {words.get(str(op), str(op))} {literal}"


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:59] + "…")
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value[:8]) + (", …" if len(value) > 8 else "") + "]"
    return repr(value)


def _policy_fields(policy: Any) -> dict[str, Any]:
    if isinstance(policy, Mapping):
        return dict(policy)
    dump = getattr(policy, "model_dump", None)
    if callable(dump):
        return dict(dump())
    raise TypeError(f"a policy must be a mapping or an ailink Policy, not {type(policy).__name__}")


def gate(policies: Sequence[Any], facts: OperationFacts) -> Gating:
    """Every rule of ``policies`` that may deny ``facts``' operation or hold it for approval."""
    gates: list[PolicyGate] = []
    for raw in policies:
        policy = _policy_fields(raw)
        if not policy.get("is_active", True) or policy.get("phase", "pre") != "pre":
            continue
        if policy.get("mode", "enforce") != "enforce":  # shadow policies only record
            continue
        for rule in policy.get("rules") or []:
            if not isinstance(rule, Mapping):
                continue
            truth, rest = evaluate(rule.get("when"), facts)
            if truth is Truth.NEVER:
                continue
            then = rule.get("then")
            for action in then if isinstance(then, list) else [then]:
                if not isinstance(action, Mapping) or action.get("action") not in ("deny", "require_approval"):
                    continue
                kind: GateAction = "deny" if action["action"] == "deny" else "require_approval"
                gates.append(PolicyGate(
                    policy=str(policy.get("name") or policy.get("id") or "unnamed"),
                    action=kind,
                    always=truth is Truth.ALWAYS,
                    condition=None if truth is Truth.ALWAYS else render(rest),
                    timeout=str(action.get("timeout", "30m")) if kind == "require_approval" else None,
                    message=str(action["message"]) if kind == "deny" and action.get("message") else None,
                ))
    gates.sort(key=lambda g: (g.action != "deny", not g.always))
    return Gating(tuple(gates))
