"""Pydantic models of the LLM calls: OpenAI-shaped completions, chunks and embeddings, plus this
toolkit's model cards, metrics and token summary. Unknown fields are kept; every model also reads
as a mapping (``m["id"]``, ``m.get("usage")``), like the management models.
"""

from __future__ import annotations

from pydantic import Field

from ailink._models import _Model

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatMessage",
    "Choice",
    "ChunkChoice",
    "Delta",
    "Embedding",
    "EmbeddingsResponse",
    "FunctionCall",
    "MeResponse",
    "MeSpend",
    "MetricsBreakdownRow",
    "MetricsPoint",
    "MetricsResponse",
    "MetricsTotals",
    "ModelInfo",
    "ModelPricing",
    "PriceEntry",
    "StreamChunk",
    "ToolCall",
    "Usage",
]


class Usage(_Model):
    """Token counts of one call; ``cost_usd`` when the gateway priced it (on a stream's usage chunk)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = None


class FunctionCall(_Model):
    """The function a tool call names, with its arguments as a JSON string (streamed in pieces)."""

    name: str | None = None
    arguments: str | None = None


class ToolCall(_Model):
    """A tool call of the assistant (``index`` is set on streamed pieces)."""

    id: str | None = None
    type: str | None = None
    index: int | None = None
    function: FunctionCall | None = None


class ChatMessage(_Model):
    """A message of a completion."""

    role: str = "assistant"
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None


class Choice(_Model):
    """One choice of a completion."""

    index: int = 0
    message: ChatMessage = Field(default_factory=ChatMessage)
    finish_reason: str | None = None


class ChatCompletion(_Model):
    """A chat completion (OpenAI-shaped), plus what the gateway said about it.

    ``content`` is the first choice's text; ``cost_usd`` the gateway's price of the call
    (``None`` when it did not say); ``request_id`` the gateway's id of the request.
    """

    id: str = ""
    object: str = "chat.completion"
    created: int = 0
    model: str = ""
    choices: list[Choice] = Field(default_factory=list)
    usage: Usage | None = None
    system_fingerprint: str | None = None
    cost_usd: float | None = None
    request_id: str | None = None

    @property
    def content(self) -> str:
        """The first choice's text (``""`` when there is none, e.g. only tool calls)."""
        if not self.choices:
            return ""
        return self.choices[0].message.content or ""

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The first choice's tool calls (empty when none)."""
        if not self.choices:
            return []
        return list(self.choices[0].message.tool_calls or [])


class Delta(_Model):
    """What one streamed chunk adds to the message."""

    role: str | None = None
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None


class ChunkChoice(_Model):
    """One choice of a streamed chunk."""

    index: int = 0
    delta: Delta = Field(default_factory=Delta)
    finish_reason: str | None = None


class ChatCompletionChunk(_Model):
    """A streamed chat completion chunk (OpenAI-shaped). ``chat(..., stream=True)`` only yields chunks
    with at least one choice; usage and cost are on the stream object once it ends."""

    id: str = ""
    object: str = "chat.completion.chunk"
    created: int = 0
    model: str = ""
    choices: list[ChunkChoice] = Field(default_factory=list)
    usage: Usage | None = None
    system_fingerprint: str | None = None

    @property
    def text(self) -> str:
        """The text this chunk adds (first choice; ``""`` when none)."""
        if not self.choices:
            return ""
        return self.choices[0].delta.content or ""


class StreamChunk(_Model):
    """A piece of ``chat_stream(..., as_chunks=True)``: its text and where it comes from.

    The last chunk of a stream carries ``usage`` and ``cost_usd`` when the gateway reported them.
    """

    text: str = ""
    request_id: str | None = None
    model: str | None = None
    index: int = 0
    finish_reason: str | None = None
    usage: Usage | None = None
    cost_usd: float | None = None


class Embedding(_Model):
    """One embedding vector."""

    object: str = "embedding"
    index: int = 0
    embedding: list[float] = Field(default_factory=list)


class EmbeddingsResponse(_Model):
    """An embeddings answer (OpenAI-shaped), with the gateway's ``cost_usd`` and ``request_id``."""

    object: str = "list"
    data: list[Embedding] = Field(default_factory=list)
    model: str = ""
    usage: Usage | None = None
    cost_usd: float | None = None
    request_id: str | None = None


class ModelPricing(_Model):
    """What a model costs, in USD per 1,000 tokens."""

    input_per_1k_usd: float
    output_per_1k_usd: float
    currency: str = "USD"


class PriceEntry(_Model):
    """A row of the gateway's price table (``client.pricing``): ``source`` is ``default`` or ``custom``."""

    model: str
    input_per_1k_usd: float
    output_per_1k_usd: float
    provider: str | None = None
    source: str | None = None
    currency: str = "USD"


class ModelInfo(_Model):
    """A model the gateway serves: its card, the provider and the price (``None``: not priced)."""

    id: str
    object: str = "model"
    created: int | None = None
    owned_by: str | None = None
    provider: str | None = None
    pricing: ModelPricing | None = None


class MetricsTotals(_Model):
    """Totals over a metrics range. Latencies in milliseconds; rates between 0 and 1."""

    requests: int = 0
    errors: int = 0
    error_rate: float = 0.0
    cost_usd: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cache_hits: int = 0
    cache_hit_rate: float = 0.0
    p50_latency_ms: float = 0.0
    p95_latency_ms: float = 0.0


class MetricsBreakdownRow(_Model):
    """The totals of one ``key`` of a ``group`` (``provider``, ``model``, ``user``, ``app``, ``org``, ``status``)."""

    group: str
    key: str
    requests: int = 0
    errors: int = 0
    cost_usd: float = 0.0
    total_tokens: int = 0


class MetricsPoint(_Model):
    """One bucket of the timeseries (``bucket`` is its start, ISO-8601 UTC)."""

    bucket: str
    requests: int = 0
    errors: int = 0
    cost_usd: float = 0.0
    total_tokens: int = 0


class MetricsResponse(_Model):
    """What ``client.metrics(range=...)`` returns: totals, a breakdown and a bucketed timeseries."""

    range: str
    since: str | None = None
    until: str | None = None
    bucket_seconds: int | None = None
    totals: MetricsTotals = Field(default_factory=MetricsTotals)
    breakdown: list[MetricsBreakdownRow] = Field(default_factory=list)
    timeseries: list[MetricsPoint] = Field(default_factory=list)


class MeSpend(_Model):
    """What the calling token has spent (USD) and used so far."""

    total_usd: float = 0.0
    today_usd: float = 0.0
    month_usd: float = 0.0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class MeResponse(_Model):
    """The calling token: its name, project, policies, scopes and spend (``token_id`` is masked)."""

    name: str | None = None
    token_id: str | None = None
    ref: str | None = None
    project_id: str | None = None
    policies: list[str] = Field(default_factory=list)
    scopes: list[str] = Field(default_factory=list)
    spend: MeSpend = Field(default_factory=MeSpend)
