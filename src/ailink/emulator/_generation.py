"""Header generations: the spelling of the gateway's branded headers and its token prefix.

The real gateway was renamed from AIlink to TrueFlow (``shared/reference/gateway-wire-contract.md``
§0): the older generation reads ``X-AIlink-*`` headers and ``ailink_v1_`` tokens, the newer one
``X-TrueFlow-*`` and ``tf_v1_``; each answers with its own ``x-<brand>-*`` response headers and
refuses (401) the other's tokens. Header names are compared case-insensitively, so only the brand
part differs. The code consults one :class:`Generation`; it never compares generation names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Generation:
    """The names one gateway generation uses on the wire (all header names lower-case)."""

    name: str
    #: Prefix of the virtual tokens it mints and accepts.
    token_prefix: str
    #: Prefix of the environment variables its error messages name (``AILINK_API_KEY``).
    env_prefix: str
    #: The brand part of its headers: ``x-<brand>-agent-name``.
    brand: str
    #: The brand as its documentation spells it (``X-AIlink-Guardrails``).
    display_brand: str

    def header(self, name: str) -> str:
        """The branded header ``name`` of this generation (``header("cache")`` → ``x-ailink-cache``)."""
        return f"x-{self.brand}-{name}"

    def display(self, name: str) -> str:
        """The branded header ``name`` as documentation writes it (``X-AIlink-Guardrails``)."""
        return f"X-{self.display_brand}-" + "-".join(part.capitalize() for part in name.split("-"))

    @property
    def agent_name(self) -> str:
        return self.header("agent-name")

    @property
    def tool_name(self) -> str:
        """The tool-name header (this project's, read for policies and the audit; not the gateway's)."""
        return self.header("tool-name")

    @property
    def idempotency_key(self) -> str:
        """The approval re-attach key header (the only key header the real gateway reads)."""
        return self.header("idempotency-key")

    @property
    def guardrails(self) -> str:
        return self.header("guardrails")

    @property
    def no_cache(self) -> str:
        return self.header("no-cache")

    @property
    def cache_status(self) -> str:
        """Response header of a cache hit (value ``HIT``; absent on a miss)."""
        return self.header("cache")

    @property
    def cb_state(self) -> str:
        """Response header on every upstream-derived answer (marks it as the upstream's)."""
        return self.header("cb-state")

    @property
    def approval_id(self) -> str:
        """Response header naming the approval an answer belongs to [ext]."""
        return self.header("approval-id")

    @property
    def extensions(self) -> str:
        """Response header listing the protocol extensions served [ext]."""
        return self.header("extensions")


AILINK = Generation(name="ailink", token_prefix="ailink_v1_", env_prefix="AILINK_", brand="ailink",
                    display_brand="AIlink")
TRUEFLOW = Generation(name="trueflow", token_prefix="tf_v1_", env_prefix="TRUEFLOW_", brand="trueflow",
                      display_brand="TrueFlow")
GENERATIONS = {g.name: g for g in (AILINK, TRUEFLOW)}


def get_generation(generation: str | Generation) -> Generation:
    """The :class:`Generation` named ``generation`` (``"ailink"`` or ``"trueflow"``); one passes through."""
    if isinstance(generation, Generation):
        return generation
    try:
        return GENERATIONS[generation]
    except KeyError:
        raise ValueError(f"unknown header generation {generation!r} (known: {', '.join(GENERATIONS)})") from None


__all__ = ["AILINK", "GENERATIONS", "TRUEFLOW", "Generation", "get_generation"]
