"""Path templates (``/repos/{owner}/{repo}``): filling them in safely, and comparing them with policy patterns.

A path parameter's value is percent-encoded whole (a ``/`` never survives as a separator) and
refused when it could change the path's shape (``.``/``..``, ``/``, ``\\``, ``%`` or control
characters); the filled-in path then goes through the tool action's path checks. For approvals
known in advance, a template is compared with a policy's pattern (``eq``, ``starts_with``,
``glob``, ...) as two small automata: a parameter stands for one or more characters other than
``/``, and the answer is whether every, some or no filled-in path matches.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from ailink._errors import InvalidToolArgumentsError

if TYPE_CHECKING:
    from ailink._openapi.gates import Truth

#: Pattern token: any one character.
ANY_CHAR = "\x00?"
#: Pattern token: any run of characters (possibly empty).
ANY_RUN = "\x00*"
_PARAM_ONE = "\x00p"  # one character other than '/'
_PARAM_RUN = "\x00P"  # a run of characters other than '/'
_OTHER = "\x01"  # stands for every character that appears in neither pattern
_PLACEHOLDER = re.compile(r"\{([^{}/]+)\}")
MAX_AUTOMATON_STATES = 20_000


@dataclass(frozen=True)
class Template:
    """A path template as policies see it: empty segments and a trailing ``/`` collapsed, as the gateway does."""

    text: str

    @classmethod
    def of(cls, base_path: str, path: str) -> Template:
        segments = [s for s in (base_path.rstrip("/") + "/" + path.lstrip("/")).split("/") if s]
        return cls("/" + "/".join(segments))

    @property
    def parameters(self) -> list[str]:
        return _PLACEHOLDER.findall(self.text)

    @property
    def has_parameters(self) -> bool:
        return bool(_PLACEHOLDER.search(self.text))

    def tokens(self) -> list[str]:
        """Literal characters, and each parameter as one-or-more characters other than ``/``."""
        out: list[str] = []
        position = 0
        for match in _PLACEHOLDER.finditer(self.text):
            out.extend(self.text[position:match.start()])
            out.extend((_PARAM_ONE, _PARAM_RUN))
            position = match.end()
        out.extend(self.text[position:])
        return out

    def compare(self, pattern: Sequence[str]) -> Truth:
        """Whether every (``ALWAYS``), some (``MAYBE``) or no (``NEVER``) filled-in path matches ``pattern``
        (literal characters, :data:`ANY_CHAR`, :data:`ANY_RUN`)."""
        from ailink._openapi.gates import Truth

        template = self.tokens()
        alphabet = {t for t in (*template, *pattern) if len(t) == 1} | {"/", _OTHER}
        start = (_closure(template, {0}), _closure(pattern, {0}))
        seen = {start}
        frontier = [start]
        meets = misses = False
        while frontier:
            t_states, p_states = frontier.pop()
            if len(template) in t_states:
                if len(pattern) in p_states:
                    meets = True
                else:
                    misses = True
                if meets and misses:
                    return Truth.MAYBE
            for char in alphabet:
                t_next = _step(template, t_states, char)
                if not t_next:
                    continue
                state = (t_next, _step(pattern, p_states, char))
                if state not in seen:
                    if len(seen) >= MAX_AUTOMATON_STATES:
                        return Truth.MAYBE
                    seen.add(state)
                    frontier.append(state)
        if not meets:
            return Truth.NEVER
        return Truth.MAYBE if misses else Truth.ALWAYS

    def expand(self, values: Mapping[str, str]) -> str:
        """The template filled in with already-serialised ``values`` (percent-encoded here)."""
        return _PLACEHOLDER.sub(lambda m: quote(values[m.group(1)], safe=""), self.text)


def _closure(tokens: Sequence[str], states: set[int]) -> frozenset[int]:
    out = set(states)
    stack = list(states)
    while stack:
        i = stack.pop()
        if i < len(tokens) and tokens[i] in (ANY_RUN, _PARAM_RUN) and i + 1 not in out:
            out.add(i + 1)
            stack.append(i + 1)
    return frozenset(out)


def _step(tokens: Sequence[str], states: frozenset[int], char: str) -> frozenset[int]:
    nxt: set[int] = set()
    for i in states:
        if i >= len(tokens):
            continue
        token = tokens[i]
        if token in (ANY_CHAR, char) or (token == _PARAM_ONE and char != "/"):
            nxt.add(i + 1)
        elif token == ANY_RUN or (token == _PARAM_RUN and char != "/"):
            nxt.add(i)
    return _closure(tokens, nxt) if nxt else frozenset()


def check_path_value(argument: str, value: str) -> str:
    """``value`` of path argument ``argument``, refused when it could change the path's shape."""
    if value == "":
        raise InvalidToolArgumentsError(f"{argument}: a path argument may not be empty")
    if value in (".", ".."):
        raise InvalidToolArgumentsError(f"{argument}: a path argument may not be '.' or '..'")
    if any(ch in value for ch in "/\\%") or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise InvalidToolArgumentsError(
            f"{argument}: a path argument may not contain '/', '\\', '%' or control characters")
    return value
