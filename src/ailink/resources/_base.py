"""The machinery every resource shares: a call described once, run by either client.

A resource module describes each endpoint as a function returning a :class:`Call` (method,
path, body, how to read the answer) and builds its sync and async classes from those
functions with :func:`sync_method` / :func:`async_method`. The client runs the call: management
calls (``admin=True``) with the admin key, data-plane calls with the virtual token through the
client's request flow (approvals, idempotency and retries included).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter

from ailink._config import PREPARED_EXTENSION, ClientConfig
from ailink._errors import MalformedResponseError, error_from_response
from ailink._retry import send_with_retries

T = TypeVar("T")
P = ParamSpec("P")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API call: what to send and how to read the answer.

    ``parse`` gets the decoded JSON body (``None`` for an empty one), or the text when ``text``
    is set. ``admin=False`` marks a data-plane call (virtual token, e.g. ``/v1/batches``).
    """

    method: str
    path: str
    parse: Callable[[Any], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    content: bytes | None = None
    headers: Mapping[str, str] | None = None
    text: bool = False
    admin: bool = True


def seg(value: str) -> str:
    """A path segment, percent-encoded (an id can never change the path)."""
    return quote(str(value), safe="")


def body(**fields: Any) -> dict[str, Any]:
    """The fields that were given (``None`` means "not given")."""
    return {k: v for k, v in fields.items() if v is not None}


def one(model: type[T], **defaults: Any) -> Callable[[Any], T]:
    """Read one ``model``; ``defaults`` fill fields the answer leaves out (e.g. the request's values)."""
    adapter = TypeAdapter(model)

    def parse(data: Any) -> T:
        if defaults and isinstance(data, dict):
            data = {**{k: v for k, v in defaults.items() if v is not None}, **data}
        return adapter.validate_python(data)

    return parse


def many(model: type[T]) -> Callable[[Any], list[T]]:
    """Read a list of ``model`` (also from ``{"data": [...]}``-style pages)."""
    adapter = TypeAdapter(list[model])  # type: ignore[valid-type]

    def parse(data: Any) -> list[T]:
        result: list[T] = adapter.validate_python(unwrap_list(data))
        return result

    return parse


def unwrap_list(data: Any) -> Any:
    if isinstance(data, dict):
        return next((data[k] for k in ("data", "items", "results") if isinstance(data.get(k), list)), data)
    return data


def as_dict(data: Any) -> dict[str, Any]:
    """A JSON object answer (an empty answer reads as ``{}``)."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def as_list(data: Any) -> list[Any]:
    """A JSON array answer (also from ``{"data": [...]}``-style pages)."""
    data = unwrap_list(data)
    if not isinstance(data, list):
        raise ValueError("expected a JSON array")
    return data


def nothing(data: Any) -> None:
    return None


def raw(data: Any) -> Any:
    return data


def read_answer(call: Call[T], response: httpx.Response) -> T:
    """The parsed answer to ``call``; a body that cannot be read is a :class:`MalformedResponseError`."""
    try:
        if call.text:
            return call.parse(response.text)
        if response.status_code == 204 or not response.content:
            return call.parse(None)
        return call.parse(response.json())
    except ValueError as exc:  # JSON decoding and pydantic validation errors are ValueErrors
        raise MalformedResponseError(
            f"Unexpected answer to {call.method} {call.path}: {exc}", status_code=response.status_code,
            response=response,
        ) from exc


def management_flow(config: ClientConfig, call: Call[T]) -> Generator[Any, Any, T]:
    """Send a management call with the admin key and read the answer (retries: reads only)."""
    request = config.build_request(call.method, call.path, params=call.params, json=call.json,
                                   content=call.content, headers=call.headers, admin=True)
    request.extensions[PREPARED_EXTENSION] = True  # the headers are final: no session or idempotency headers
    response: httpx.Response = yield from send_with_retries(request, config.retry)
    if response.status_code >= 400:
        raise error_from_response(response, management=True)
    return read_answer(call, response)


def pages(fetch: Callable[[int, int], list[T]], batch_size: int) -> Iterator[T]:
    """Every item of a list endpoint: ``fetch(limit, offset)`` page by page until a short page."""
    offset = 0
    while True:
        page = fetch(batch_size, offset)
        yield from page
        if len(page) < batch_size:
            return
        offset += batch_size


async def apages(fetch: Callable[[int, int], Awaitable[list[T]]], batch_size: int) -> AsyncIterator[T]:
    """The async twin of :func:`pages`."""
    offset = 0
    while True:
        page = await fetch(batch_size, offset)
        for item in page:
            yield item
        if len(page) < batch_size:
            return
        offset += batch_size


class SyncExecutor(Protocol):
    def _execute(self, call: Call[T], /) -> T: ...


class AsyncExecutor(Protocol):
    async def _aexecute(self, call: Call[T], /) -> T: ...


class SyncResource:
    """Base of the sync resources: bound to the client that runs their calls."""

    def __init__(self, client: SyncExecutor) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class AsyncResource:
    """Base of the async resources."""

    def __init__(self, client: AsyncExecutor) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def _present(method: Callable[..., Any], spec: Callable[..., Any]) -> None:
    """Give ``method`` the name, docs and real signature of ``spec`` (with ``self`` first)."""
    name = spec.__name__.lstrip("_")
    method.__name__ = method.__qualname__ = name
    method.__doc__ = spec.__doc__
    signature = inspect.signature(spec)
    returns = signature.return_annotation
    if isinstance(returns, str) and returns.startswith("Call[") and returns.endswith("]"):
        returns = returns[len("Call["):-1]
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[self_param, *signature.parameters.values()], return_annotation=returns
    )


def sync_method(spec: Callable[P, Call[T]]) -> Callable[Concatenate[SyncResource, P], T]:
    """A sync resource method running the call ``spec`` describes (same parameters as ``spec``)."""

    def method(self: SyncResource, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._client._execute(spec(*args, **kwargs))

    _present(method, spec)
    return method


def async_method(spec: Callable[P, Call[T]]) -> Callable[Concatenate[AsyncResource, P], Coroutine[Any, Any, T]]:
    """The async twin of :func:`sync_method`."""

    async def method(self: AsyncResource, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._client._aexecute(spec(*args, **kwargs))

    _present(method, spec)
    return method
