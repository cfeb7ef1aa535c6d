"""pytest fixtures for code that talks to an AIlink gateway, and a secret-scrubbing vcrpy config.

Enable with ``pytest_plugins = ["ailink.testing"]`` in a ``conftest.py``.

Fixtures:

* ``ailink_gateway``: an emulator of the test's own (empty in-memory database, its own admin key,
  mock upstreams and counters) on its own loopback port, as an :class:`EmulatorGateway`. It is
  served by the session's :class:`~ailink.emulator.EmulatorHost` (one background thread for every
  test of a session, or of a pytest-xdist worker), so it costs a few milliseconds; nothing leaks
  between tests. ``pytest --ailink-fresh-gateway`` gives each test a server thread of its own instead.
  Parametrize it indirectly (``"ailink"``, ``"real"``, ``"trueflow"`` or a dict of options) to run
  one test against several gateway behaviours.
* ``ailink_gateway_url``: its URL.
* ``ailink_gateway_real``: the same in the emulator's ``real`` profile (the real gateway's behaviour).
* ``ailink_gateway_trueflow``: the ``real`` profile of the newer gateway generation (``X-TrueFlow-*``
  headers, ``tf_v1_`` tokens).
* ``ailink_gateway_fresh``: an emulator with a server thread of its own, for a test that stops or
  restarts it (or use :func:`start_gateway`, e.g. with ``db_path=`` to restart on the same file);
  parametrized like ``ailink_gateway``.
* ``ailink_emulator_host``: the session's host, for emulators with other options
  (``start_gateway(host=ailink_emulator_host, seed="demo", ...)``).

:func:`vcr_config` returns keyword arguments for ``vcr.VCR(...)`` / pytest-recording that strip every
token and key from recorded cassettes and ignore volatile headers when matching.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest

from ailink._secrets import REDACTED, is_secret_name, redact, redact_fields
from ailink._transport import ssl_context

if TYPE_CHECKING:
    from ailink._client import AdminClient
    from ailink.emulator import EmulatorHost, RunningEmulator

__all__ = [
    "SECRET_HEADERS",
    "ApproverHandle",
    "EmulatorGateway",
    "ailink_emulator_host",
    "ailink_gateway",
    "ailink_gateway_fresh",
    "ailink_gateway_real",
    "ailink_gateway_trueflow",
    "ailink_gateway_url",
    "scrub_text",
    "start_gateway",
    "vcr_config",
]

UPSTREAMS = {"payments": "http://payments.mock", "llm": "http://llm.mock"}
SECRET_HEADERS = ("authorization", "x-admin-key", "x-real-authorization", "x-upstream-authorization", "x-api-key")
VOLATILE_HEADERS = ("idempotency-key", "x-ailink-idempotency-key", "x-trueflow-idempotency-key", "x-idempotency-key",
                    "traceparent", "tracestate", "x-request-id")


class ApproverHandle:
    """A background thread deciding the next ``count`` pending approvals."""

    def __init__(self, gateway: EmulatorGateway, count: int, decision: str, timeout: float,
                 reason: str | None) -> None:
        self.decided: list[str] = []
        self.error: BaseException | None = None
        self._gateway = gateway
        self._count = count
        self._decision = decision
        self._timeout = timeout
        self._reason = reason
        self._thread = threading.Thread(target=self._run, name="ailink-approver", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + self._timeout
        try:
            while len(self.decided) < self._count and time.monotonic() < deadline:
                for approval in self._gateway.pending_approvals():
                    if approval["id"] in self.decided or len(self.decided) >= self._count:
                        continue
                    self._gateway.decide(approval["id"], self._decision, self._reason)
                    self.decided.append(approval["id"])
                time.sleep(0.02)
        except BaseException as exc:  # reported by join()
            self.error = exc

    def join(self, timeout: float | None = None) -> list[str]:
        """Wait for the approver; returns the decided ids. Raises if it failed or decided too few."""
        self._thread.join(self._timeout + 5 if timeout is None else timeout)
        if self.error is not None:
            raise self.error
        if len(self.decided) < self._count:
            raise TimeoutError(f"approver decided {len(self.decided)} of {self._count} approvals in time")
        return list(self.decided)


class EmulatorGateway:
    """A running local emulator plus helpers built on its management API (plain httpx)."""

    def __init__(self, running: RunningEmulator) -> None:
        self.running = running
        self.url: str = running.url
        self.admin_key: str = running.admin_key
        self._http = httpx.Client(base_url=self.url, headers={"X-Admin-Key": self.admin_key}, timeout=30.0,
                                  verify=ssl_context())
        self._admin: AdminClient | None = None

    def __repr__(self) -> str:
        return f"EmulatorGateway(url={self.url!r})"

    @property
    def profile(self) -> str:
        """The emulator's profile: ``"ailink"`` (every protocol extension) or ``"real"``."""
        return str(self.running.app.state.profile.name)

    @property
    def generation(self) -> str:
        """The emulator's header generation: ``"ailink"`` (``X-AIlink-*``) or ``"trueflow"``."""
        return str(self.running.app.state.generation.name)

    @property
    def serves_extensions(self) -> bool:
        """True when the emulator serves this project's protocol extensions (202, stored outcomes)."""
        return bool(self.running.app.state.profile.extensions)

    @property
    def admin(self) -> AdminClient:
        """An ``ailink`` admin client for this gateway (built on first use)."""
        if self._admin is None:
            from ailink import AIlinkClient

            self._admin = AIlinkClient.admin(admin_key=self.admin_key, gateway_url=self.url)
        return self._admin

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path} → {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    # ------------------------------------------------------------------ setup helpers
    def create_policy(self, policy: dict[str, Any]) -> str:
        return str(self._call("POST", "/api/v1/policies", json=policy)["id"])

    def create_credential(self, secret: str, *, name: str = "test-credential", injection_mode: str = "bearer",
                          injection_header: str | None = None) -> str:
        body: dict[str, Any] = {"name": name, "provider": "custom", "secret": secret,
                                "injection_mode": injection_mode}
        if injection_header is not None:
            body["injection_header"] = injection_header
        return str(self._call("POST", "/api/v1/credentials", json=body)["id"])

    def create_token(self, *, name: str = "test", upstream: str = "payments",
                     policies: list[dict[str, Any]] | None = None, credential_secret: str | None = None) -> str:
        """Create the policies, then a token using them; returns the token (``ailink_v1_...``, or
        ``tf_v1_...`` in the ``trueflow`` generation).

        ``upstream`` is ``"payments"``, ``"llm"`` (the built-in mocks) or any URL.
        """
        policy_ids = [self.create_policy(p) for p in policies or []]
        body: dict[str, Any] = {"name": name, "upstream_url": UPSTREAMS.get(upstream, upstream),
                                "policy_ids": policy_ids}
        if credential_secret is not None:
            body["credential_id"] = self.create_credential(credential_secret)
        return str(self._call("POST", "/api/v1/tokens", json=body)["token_id"])

    def create_service(self, name: str, base_url: str, *, credential_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "base_url": UPSTREAMS.get(base_url, base_url)}
        if credential_id is not None:
            body["credential_id"] = credential_id
        result: dict[str, Any] = self._call("POST", "/api/v1/services", json=body)
        return result

    # ------------------------------------------------------------------ mocks
    def script_llm(self, token: str, responses: list[dict[str, Any]]) -> None:
        """Queue mock-LLM answers for ``token``: ``{"content": ...}`` or ``{"tool_calls": [...]}``."""
        self._call("POST", "/api/v1/emulator/llm/script", json={"token_id": token, "responses": responses})

    def payments_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self._call("GET", "/api/v1/emulator/payments/stats")
        return stats

    def reset_stats(self) -> None:
        self._call("POST", "/api/v1/emulator/reset-stats")

    # ------------------------------------------------------------------ approvals, audit, sessions
    def pending_approvals(self) -> list[dict[str, Any]]:
        """The approval requests waiting for a decision."""
        rows: list[dict[str, Any]] = self._call("GET", "/api/v1/approvals", params={"status": "pending"})
        return [row for row in rows if row.get("status") == "pending"]  # the real gateway ignores ?status=

    def approvals(self) -> list[dict[str, Any]]:
        """Every approval request, whatever its status (newest first)."""
        rows: list[dict[str, Any]] = self._call("GET", "/api/v1/approvals")
        return rows

    def decide(self, approval_id: str, decision: str, reason: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"decision": decision}
        if reason is not None:
            body["reason"] = reason
        result: dict[str, Any] = self._call("POST", f"/api/v1/approvals/{approval_id}/decision", json=body)
        return result

    def approve_when_pending(self, count: int = 1, decision: str = "approved", timeout: float = 10,
                             reason: str | None = None) -> ApproverHandle:
        """Start a thread that decides the next ``count`` pending approvals; ``.join()`` it."""
        return ApproverHandle(self, count, decision, timeout, reason)

    def audit(self, **filters: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._call("GET", "/api/v1/audit", params={"limit": 200, **filters})
        return rows

    def session(self, session_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/api/v1/sessions/{session_id}")
        return result

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
        self._http.close()

    def __enter__(self) -> EmulatorGateway:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def start_gateway(*, host: EmulatorHost | None = None, **options: Any) -> tuple[EmulatorGateway, Callable[[], None]]:
    """Start an emulator (options go to ``run_in_thread``); returns it and a stop function.

    With ``host`` (an :class:`~ailink.emulator.EmulatorHost`, e.g. the ``ailink_emulator_host``
    fixture) it is served on the host's thread, in milliseconds; else on a server thread of its own.
    With an in-memory database the stop function does not wait for the server to finish (nothing
    outlives it); with a file database it does, so the file can be reopened at once.
    """
    from ailink.emulator import run_in_thread

    running = host.start(**options) if host is not None else run_in_thread(**options)
    gateway = EmulatorGateway(running)
    wait = options.get("db_path", ":memory:") != ":memory:"

    def stop() -> None:
        gateway.close()
        running.stop(wait=wait)

    return gateway, stop


FRESH_OPTION = "--ailink-fresh-gateway"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(FRESH_OPTION, action="store_true", default=False,
                     help="ailink_gateway: give each test an emulator with a server thread of its own "
                          "(slower) instead of one on the session's emulator host")


@pytest.fixture(scope="session")
def ailink_emulator_host() -> Iterator[EmulatorHost]:
    """The :class:`~ailink.emulator.EmulatorHost` of this test session (or pytest-xdist worker)."""
    from ailink.emulator import EmulatorHost

    with EmulatorHost() as host:
        yield host


def _gateway(request: pytest.FixtureRequest, **options: Any) -> Iterator[EmulatorGateway]:
    host = None if request.config.getoption(FRESH_OPTION) else request.getfixturevalue("ailink_emulator_host")
    gateway, stop = start_gateway(host=host, **options)
    try:
        yield gateway
    finally:
        stop()


#: ``run_in_thread`` options of each profile a test can ask ``ailink_gateway`` for (see its docstring).
PROFILE_OPTIONS: dict[str, dict[str, Any]] = {
    "ailink": {},
    "real": {"profile": "real", "retry_backoff": 0.01},
    "trueflow": {"profile": "real", "generation": "trueflow", "retry_backoff": 0.01},
}


def gateway_options(param: Any) -> dict[str, Any]:
    """``run_in_thread`` options for an ``ailink_gateway`` parameter: a name of :data:`PROFILE_OPTIONS`
    or a dict of options."""
    if param is None:
        return {}
    if isinstance(param, str):
        try:
            return dict(PROFILE_OPTIONS[param])
        except KeyError:
            raise ValueError(f"unknown gateway profile {param!r} (known: {', '.join(PROFILE_OPTIONS)})") from None
    if isinstance(param, dict):
        return dict(param)
    raise TypeError("an ailink_gateway parameter is a profile name or a dict of run_in_thread options")


@pytest.fixture
def ailink_gateway(request: pytest.FixtureRequest) -> Iterator[EmulatorGateway]:
    """An emulator of this test's own (empty in-memory database, own admin key, mocks and counters)
    on its own loopback port, served by the session's emulator host.

    Default profile ``ailink`` (every protocol extension). Parametrize it indirectly to run a test
    against other behaviours: ``"real"`` (the real gateway), ``"trueflow"`` (the real gateway of the
    ``X-TrueFlow-``/``tf_v1_`` generation), or a dict of ``run_in_thread`` options::

        @pytest.mark.parametrize("ailink_gateway", ["ailink", "real"], indirect=True)
    """
    yield from _gateway(request, **gateway_options(getattr(request, "param", None)))


@pytest.fixture
def ailink_gateway_fresh(request: pytest.FixtureRequest) -> Iterator[EmulatorGateway]:
    """An emulator with a server thread of its own (what ``ailink_gateway`` was before the host), for
    tests that stop it or need it alone in its thread; parametrized like ``ailink_gateway``."""
    gateway, stop = start_gateway(**gateway_options(getattr(request, "param", None)))
    try:
        yield gateway
    finally:
        stop()


@pytest.fixture
def ailink_gateway_url(ailink_gateway: EmulatorGateway) -> str:
    return ailink_gateway.url


# ---------------------------------------------------------------------- emulator profiles


@pytest.fixture
def ailink_gateway_real(request: pytest.FixtureRequest) -> Iterator[EmulatorGateway]:
    """An emulator of this test's own in the ``real`` profile: behaves like the real AIlink gateway (no
    extensions: approvals are held, nothing is stored or replayed, management errors are bare status codes).

    Its gateway-side retries (switched on by a plain ``Idempotency-Key``) use a short backoff.
    """
    yield from _gateway(request, **PROFILE_OPTIONS["real"])


@pytest.fixture
def ailink_gateway_trueflow(request: pytest.FixtureRequest) -> Iterator[EmulatorGateway]:
    """An emulator of this test's own behaving like the newest real gateway: the ``real`` profile in
    the ``trueflow`` generation (reads ``X-TrueFlow-*`` headers, mints and accepts only ``tf_v1_`` tokens)."""
    yield from _gateway(request, **PROFILE_OPTIONS["trueflow"])


# ---------------------------------------------------------------------- vcrpy


def scrub_text(text: str) -> str:
    """``text`` with every AIlink token, admin key and ``sk-...`` key (``ailink_v1_REDACTED``, ...), URL
    password and secret-named URL parameter (``?api_key=REDACTED``) redacted."""
    return redact(text)


def _is_secret_header(name: str) -> bool:
    return name.lower() in SECRET_HEADERS or is_secret_name(name)


def _scrub_form(text: str) -> str | None:
    """A form body with secret-named fields redacted, or None when ``text`` is not one."""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return None
    if not any(is_secret_name(name) for name, _ in pairs):
        return scrub_text(text)
    return urlencode([(name, REDACTED if is_secret_name(name) and value else scrub_text(value))
                      for name, value in pairs])


def _scrub_text_body(text: str, content_type: str) -> str:
    if text.lstrip()[:1] in ("{", "["):
        try:
            parsed = json.loads(text)
        except ValueError:
            pass
        else:
            cleaned, changed = redact_fields(parsed)
            return json.dumps(cleaned, ensure_ascii=False, separators=(",", ":")) if changed else text
    if "x-www-form-urlencoded" in content_type:
        form = _scrub_form(text)
        if form is not None:
            return form
    return scrub_text(text)


def _scrub_body(body: Any, content_type: str) -> Any:
    """A request or response body (bytes or text) with every secret redacted: JSON fields and form
    fields named like secrets, at any depth, plus known token prefixes, URL passwords and parameters."""
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return body
        return _scrub_text_body(text, content_type).encode("utf-8")
    if isinstance(body, str):
        return _scrub_text_body(body, content_type)
    return body


def _header(headers: Any, name: str) -> str:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return str(value[0] if isinstance(value, list) and value else value)
    return ""


def _scrub_request(request: Any) -> Any:
    request = copy.deepcopy(request)
    for name in list(request.headers):
        if _is_secret_header(name):
            request.headers[name] = REDACTED
        else:
            request.headers[name] = scrub_text(str(request.headers[name]))
    request.body = _scrub_body(request.body, _header(request.headers, "content-type"))
    request.uri = scrub_text(request.uri)
    return request


def _scrub_response(response: Any) -> Any:
    response = copy.deepcopy(response)
    headers = response.get("headers") or {}
    for name in list(headers):
        values = headers[name]
        if _is_secret_header(name):
            headers[name] = [REDACTED] if isinstance(values, list) else REDACTED
        elif isinstance(values, list):
            headers[name] = [scrub_text(str(v)) for v in values]
        else:
            headers[name] = scrub_text(str(values))
    body = response.get("body")
    if isinstance(body, dict) and "string" in body:
        body["string"] = _scrub_body(body["string"], _header(headers, "content-type"))
    return response


def vcr_config() -> dict[str, Any]:
    """Keyword arguments for ``vcr.VCR`` (or return it from pytest-recording's ``vcr_config`` fixture).

    In requests and responses: headers named like secrets (``Authorization``, ``X-Admin-Key``,
    ``X-Api-Key``, ``Cookie``, ...) are replaced; JSON fields, form fields and URL parameters named
    like secrets (``secret``, ``api_key``, ``token``, ``password``, ``client_secret``,
    ``private_key``, ... case-insensitive, at any depth) become ``REDACTED``; URL passwords and
    ``ailink_v1_...``/``sk-...``/admin keys are redacted wherever they appear. The scrubbing also
    applies to live requests before matching, so recorded and live requests compare equal;
    matching uses method, path, query and body, so volatile headers (idempotency keys,
    ``traceparent``, ``x-request-id``) never break a replay.
    """
    return {
        "filter_headers": [(name, "REDACTED") for name in SECRET_HEADERS],
        "before_record_request": _scrub_request,
        "before_record_response": _scrub_response,
        "match_on": ["method", "path", "query", "body"],
        "decode_compressed_response": True,
    }
