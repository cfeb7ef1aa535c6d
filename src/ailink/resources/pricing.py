"""The gateway's price table: what each model costs, used to price every LLM call. [ext]"""

from __future__ import annotations

from ailink._llm_models import PriceEntry
from ailink.resources._base import AsyncResource, Call, SyncResource, async_method, body, many, one, seg, sync_method

__all__ = ["AsyncPricingResource", "PricingResource"]


def _list() -> Call[list[PriceEntry]]:
    """Every priced model: the built-in defaults and the prices set here (``source``)."""
    return Call("GET", "/api/v1/pricing", many(PriceEntry))


def _get(model: str) -> Call[PriceEntry]:
    """The price of ``model`` (a dated name such as ``gpt-4o-2024-08-06`` resolves to ``gpt-4o``)."""
    return Call("GET", f"/api/v1/pricing/{seg(model)}", one(PriceEntry))


def _set(model: str, input_per_1k_usd: float, output_per_1k_usd: float, provider: str | None = None
         ) -> Call[PriceEntry]:
    """Set the price of ``model`` in USD per 1,000 input and output tokens (overrides the default)."""
    return Call("PUT", f"/api/v1/pricing/{seg(model)}", one(PriceEntry),
                json=body(input_per_1k_usd=input_per_1k_usd, output_per_1k_usd=output_per_1k_usd, provider=provider))


def _delete(model: str) -> Call[PriceEntry]:
    """Remove the price set for ``model`` (its built-in default, if any, applies again)."""
    return Call("DELETE", f"/api/v1/pricing/{seg(model)}", one(PriceEntry))


class PricingResource(SyncResource):
    """``client.pricing`` (admin key): the price table the gateway computes call costs from."""

    list = sync_method(_list)
    get = sync_method(_get)
    set = sync_method(_set)
    delete = sync_method(_delete)


class AsyncPricingResource(AsyncResource):
    """``client.pricing`` of an :class:`~ailink.AsyncClient`."""

    list = async_method(_list)
    get = async_method(_get)
    set = async_method(_set)
    delete = async_method(_delete)
