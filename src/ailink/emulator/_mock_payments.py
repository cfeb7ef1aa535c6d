"""A small in-process REST "payments" API (Stripe-like), the emulator's ``http://payments.mock`` upstream.

It counts executions in total and per ``Idempotency-Key`` so tests can prove a side effect
happened exactly once. **Deviation from the real gateway**: the emulator forwards the client's
``Idempotency-Key`` to upstreams (the real gateway drops it), precisely so this counter can see it.

Strict on purpose (``_mock_http``): exact paths only (no encoded bytes, dot or empty segments,
trailing slashes: 404) and JSON object bodies only on writes (415 without a JSON content type,
400 for anything but an object), so a policy test means what it says.

It describes itself: ``GET /openapi.json`` answers its OpenAPI 3.1 document (``payments.openapi.json``
beside this module; the ``/v1/echo`` test hook is left out of it), which agents fetch through the
gateway (``{gateway}/openapi.json`` with a payments token, or ``/v1/proxy/services/payments/openapi.json``)
to build one typed tool per operation.

Extra test hooks: ``X-Mock-Status: <code>`` on a charge/refund answers that status (counted as an
attempt, not as a charge); ``/v1/echo`` (any method) answers what it received (method, path,
query, headers, body) so tests can check credential injection and forwarding.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import Counter
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._mock_http import ExactPaths, json_object

CUSTOMERS = [
    {"id": "cus_001", "object": "customer", "name": "Ada Lovelace", "email": "ada@example.com"},
    {"id": "cus_002", "object": "customer", "name": "Grace Hopper", "email": "grace@example.com"},
    {"id": "cus_003", "object": "customer", "name": "Alan Turing", "email": "alan@example.com"},
]


def openapi_document() -> dict[str, Any]:
    """The payments mock's OpenAPI 3.1 document."""
    text = resources.files("ailink.emulator").joinpath("payments.openapi.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def _error(status: int, message: str, code: str = "invalid_request") -> JSONResponse:
    # Stripe-style upstream error body; deliberately not a gateway error type.
    return JSONResponse({"error": {"type": "invalid_request_error", "code": code, "message": message}},
                        status_code=status)


class PaymentsMock:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.total_executions = 0
        self.charge_count = 0
        self.refund_count = 0
        self.by_key: Counter[str] = Counter()
        self.openapi = openapi_document()
        app = Starlette(routes=[
            Route("/openapi.json", self.describe, methods=["GET"]),
            Route("/v1/customers", self.list_customers, methods=["GET"]),
            Route("/v1/customers/{cid}", self.get_customer, methods=["GET"]),
            Route("/v1/charges", self.create_charge, methods=["POST"]),
            Route("/v1/charges", self.list_charges, methods=["GET"]),
            Route("/v1/charges/{cid}", self.get_charge, methods=["GET"]),
            Route("/v1/refunds", self.create_refund, methods=["POST"]),
            Route("/v1/echo", self.echo, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            Route("/v1/echo/{rest:path}", self.echo, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ])
        app.router.redirect_slashes = False
        self.app = ExactPaths(app)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total_executions": self.total_executions,
                "charges": self.charge_count,
                "refunds": self.refund_count,
                "by_idempotency_key": dict(self.by_key),
            }

    def reset(self) -> None:
        with self._lock:
            self.total_executions = self.charge_count = self.refund_count = 0
            self.by_key.clear()
            self.charges.clear()
            self.refunds.clear()

    def _count(self, request: Request) -> None:
        key = request.headers.get("idempotency-key")
        with self._lock:
            self.total_executions += 1
            if key:
                self.by_key[key] += 1

    async def describe(self, request: Request) -> Response:
        return JSONResponse(self.openapi)

    async def list_customers(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": CUSTOMERS, "has_more": False})

    async def get_customer(self, request: Request) -> Response:
        cid = request.path_params["cid"]
        for customer in CUSTOMERS:
            if customer["id"] == cid:
                return JSONResponse(customer)
        return _error(404, f"No such customer: '{cid}'", "resource_missing")

    async def create_charge(self, request: Request) -> Response:
        self._count(request)
        forced = request.headers.get("x-mock-status")
        if forced and forced.isdigit():
            return _error(int(forced), "forced failure", "mock_status")
        params, status, problem = await json_object(request)
        if params is None:
            return _error(status, problem)
        try:
            amount = int(params.get("amount", 0))
        except (TypeError, ValueError):
            return _error(400, "amount must be an integer")
        if amount <= 0:
            return _error(400, "amount must be a positive integer (in cents)", "parameter_invalid_integer")
        with self._lock:
            self.charge_count += 1
            charge: dict[str, Any] = {
                "id": f"ch_{next(self._seq):06d}", "object": "charge", "amount": amount,
                "currency": str(params.get("currency", "usd")), "customer": params.get("customer"),
                "description": params.get("description"), "status": "succeeded", "refunded": False,
                "idempotency_key": request.headers.get("idempotency-key"),
            }
            self.charges[charge["id"]] = charge
        return JSONResponse(charge)

    async def list_charges(self, request: Request) -> Response:
        with self._lock:
            data = list(self.charges.values())
        return JSONResponse({"object": "list", "data": data, "has_more": False})

    async def get_charge(self, request: Request) -> Response:
        charge = self.charges.get(request.path_params["cid"])
        if charge is None:
            return _error(404, f"No such charge: '{request.path_params['cid']}'", "resource_missing")
        return JSONResponse(charge)

    async def create_refund(self, request: Request) -> Response:
        self._count(request)
        forced = request.headers.get("x-mock-status")
        if forced and forced.isdigit():
            return _error(int(forced), "forced failure", "mock_status")
        params, status, problem = await json_object(request)
        if params is None:
            return _error(status, problem)
        with self._lock:
            self.refund_count += 1
            refund: dict[str, Any] = {
                "id": f"re_{next(self._seq):06d}", "object": "refund", "charge": params.get("charge"),
                "amount": params.get("amount"), "status": "succeeded",
            }
            self.refunds[refund["id"]] = refund
        return JSONResponse(refund)

    async def echo(self, request: Request) -> Response:
        body = await request.body()
        return JSONResponse({
            "method": request.method, "path": request.url.path, "query": request.url.query,
            "headers": {k: v for k, v in request.headers.items()},
            "body": body.decode("utf-8", "replace"),
        })
