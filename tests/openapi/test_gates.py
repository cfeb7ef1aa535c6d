"""Approvals known in advance: which operations a token's policies may deny or hold for a human.

The verdicts are checked against the emulator's own policy evaluator on concrete requests: an
operation said never to match a rule has no call that matches it, one said always to match has no
call that escapes it.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from ailink import AIlinkClient, Policy
from ailink._openapi.gates import OperationFacts, Truth, evaluate, render
from ailink._openapi.paths import Template
from ailink.emulator._factory import DEMO_POLICIES
from ailink.emulator._mock_payments import openapi_document
from ailink.emulator._policy import NO_BODY, RequestFacts, matches
from ailink.openapi import convert, policies_for_token
from ailink.testing import EmulatorGateway

FIXTURE = Path(__file__).parent / "fixtures" / "code_hosting.yaml"


def _facts(method: str, template: str, *, tool: str = "tool", agent: str | None = None, body: bool = False,
           query: dict[str, bool] | None = None) -> OperationFacts:
    return OperationFacts(method=method, path=Template(template), tool_name=tool, agent_name=agent, has_body=body,
                          query=query or {})


def _path(op: str, value: Any) -> dict[str, Any]:
    return {"field": "request.path", "op": op, "value": value}


TEMPLATES = ["/v1/charges", "/v1/customers/{id}", "/repos/{owner}/{repo}/issues", "/v1/{kind}/x/{id}"]
FILLS = ["a", "cus_001", "v1", "charges", "x", "issues", "*", "a.b", "repos", "customers"]
CONDITIONS = [
    _path("eq", "/v1/charges"), _path("eq", "/v1/customers/cus_001"), _path("eq", "/v1/customers"),
    _path("neq", "/v1/charges"), _path("neq", "/v1/customers/a"),
    _path("starts_with", "/v1/customers"), _path("starts_with", "/v1/customers/cus"), _path("starts_with", "/repos/"),
    _path("ends_with", "/issues"), _path("ends_with", "es"), _path("ends_with", "/x/a"),
    _path("contains", "charges"), _path("contains", "/x/"), _path("contains", "zzz"),
    _path("glob", "/v1/*"), _path("glob", "/repos/*/*/issues"), _path("glob", "/repos/?/*"), _path("glob", "*/x/*"),
    _path("glob", "/v1/customers/*/more"), _path("in", ["/v1/charges", "/v1/customers/a"]), _path("exists", None),
    {"not": _path("starts_with", "/v1/")},
    {"all": [{"field": "request.method", "op": "eq", "value": "POST"}, _path("glob", "/v1/*")]},
    {"any": [_path("eq", "/v1/charges"), _path("ends_with", "/issues")]},
]


@pytest.mark.parametrize("template", TEMPLATES)
def test_verdicts_agree_with_the_gateways_evaluator(template: str) -> None:
    slots = Template(template).parameters
    seen: set[Truth] = set()
    for cond in CONDITIONS:
        truth, _ = evaluate(cond, _facts("POST", template))
        seen.add(truth)
        outcomes = set()
        for fill in itertools.product(FILLS, repeat=len(slots)):
            path = Template(template).expand(dict(zip(slots, fill, strict=True)))
            request = RequestFacts(method="POST", path=path, headers={}, query={}, body_bytes=b"", body=NO_BODY,
                                   agent_name=None, token_ref="t", token_name="t")
            outcomes.add(matches(cond, request))
        if truth is Truth.ALWAYS:
            assert outcomes == {True}, (template, cond)
        elif truth is Truth.NEVER:
            assert outcomes == {False}, (template, cond)
        else:
            assert slots, (template, cond)  # undecided only when parameters decide
    assert Truth.NEVER in seen and Truth.ALWAYS in seen
    if slots:
        assert Truth.MAYBE in seen


KNOWN_FIELDS = {"request.method": "POST", "request.headers.x-ailink-tool-name": "create_charge",
                "agent.name": "billing-bot"}
OPERANDS = ["POST", "post", "create_charge", "create_*", "*charge", "?reate_charge", "charge", "billing",
            "bot", "^create", "ch.rge$", "[", "10", ["POST", "GET"], ["create_charge"], ["x"]]
OPERATORS = ["eq", "neq", "gt", "gte", "lt", "lte", "in", "contains", "glob", "regex", "starts_with",
             "ends_with", "exists"]


def test_every_operator_on_a_known_field_is_predicted_as_the_gateway_enforces_it() -> None:
    """One copy of the operators (``ailink._policy_match``) serves both sides; this holds the fields
    around it: a value known before any call gets the verdict the gateway's evaluator gives each call."""
    facts = _facts("POST", "/v1/charges", tool="create_charge", agent="billing-bot")
    request = RequestFacts(method="POST", path="/v1/charges", headers={"x-ailink-tool-name": "create_charge"},
                           query={}, body_bytes=b"", body=NO_BODY, agent_name="billing-bot", token_ref="t",
                           token_name="t")
    checked = 0
    for field, op, operand in itertools.product(KNOWN_FIELDS, OPERATORS, OPERANDS):
        if (op == "in") != isinstance(operand, list):
            continue  # what the gateway's policy validation accepts
        cond = {"field": field, "op": op, "value": operand}
        truth, _ = evaluate(cond, facts)
        assert truth is not Truth.MAYBE, cond  # known values and RE2 installed: always decided
        assert matches(cond, request) is (truth is Truth.ALWAYS), cond
        checked += 1
    assert checked > 300


def test_what_is_known_of_every_call_decides_a_rule() -> None:
    get = _facts("GET", "/v1/items/{id}", tool="get_item", query={"expand": False, "q": True})
    post = _facts("POST", "/v1/items", tool="create_item", agent="billing-bot", body=True)
    body_rule = {"field": "request.body.amount", "op": "gt", "value": 1000}
    assert evaluate(body_rule, get)[0] is Truth.NEVER  # a GET has no body
    assert evaluate(body_rule, post) == (Truth.MAYBE, body_rule)
    size = {"field": "request.body_size", "op": "gt", "value": 0}
    assert evaluate(size, get)[0] is Truth.NEVER and evaluate(size, post)[0] is Truth.MAYBE
    tool = {"field": "request.headers.x-ailink-tool-name", "op": "eq", "value": "create_item"}
    assert evaluate(tool, post)[0] is Truth.ALWAYS and evaluate(tool, get)[0] is Truth.NEVER
    agent = {"field": "agent.name", "op": "eq", "value": "billing-bot"}
    assert evaluate(agent, post)[0] is Truth.ALWAYS and evaluate(agent, get)[0] is Truth.MAYBE  # no agent name
    assert evaluate({"field": "request.query.q", "op": "exists"}, get)[0] is Truth.ALWAYS  # required
    assert evaluate({"field": "request.query.expand", "op": "exists"}, get)[0] is Truth.MAYBE
    assert evaluate({"field": "request.query.nope", "op": "eq", "value": "1"}, get)[0] is Truth.NEVER
    assert evaluate({"not": {"field": "request.query.nope", "op": "exists"}}, get)[0] is Truth.ALWAYS
    assert evaluate({"field": "request.headers.x-custom", "op": "exists"}, get)[0] is Truth.MAYBE
    assert evaluate({"always": True}, get)[0] is Truth.ALWAYS and evaluate(None, get)[0] is Truth.ALWAYS
    assert evaluate(_path("regex", "^/v1/items$"), post)[0] is Truth.ALWAYS  # RE2, as the gateway
    assert evaluate(_path("regex", "^/v1/items/[0-9]+$"), get)[0] is Truth.MAYBE


def test_a_query_object_spread_into_keys_may_send_any_name() -> None:
    policy = {"name": "mentions", "rules": [{"when": {"field": "request.query.filter[reason]", "op": "eq",
                                                      "value": "mention"}, "then": {"action": "require_approval"}}]}
    conversion = convert(FIXTURE, policies=[policy])
    assert conversion.action("activity_list-notifications-for-authenticated-user").gating.approval == "conditional"
    assert conversion.action("issues_list-for-repo").gating.approval == "none"  # no such key can be sent


def test_the_undecided_rest_is_said_in_words() -> None:
    cond = {"all": [{"field": "request.method", "op": "eq", "value": "POST"},
                    {"any": [{"field": "request.body.amount", "op": "gte", "value": 500},
                             {"not": {"field": "request.body.currency", "op": "in", "value": ["usd", "eur"]}}]}]}
    truth, rest = evaluate(cond, _facts("POST", "/v1/charges", body=True))
    assert truth is Truth.MAYBE
    assert render(rest) == "body.amount >= 500 or not body.currency is one of ['usd', 'eur']"
    assert len(render({"field": "request.body.x", "op": "eq", "value": "y" * 1000})) <= 240


def test_the_demo_policies_on_the_payments_api() -> None:
    policies = [{**p, "id": f"pol_{i}"} for i, p in enumerate(DEMO_POLICIES)]
    conversion = convert(openapi_document(), policies=policies)
    gating = {a.name: a.gating for a in conversion.actions}
    assert gating["retrieve_customer"].gates == () and gating["list_charges"].approval == "none"
    charge = conversion.action("create_charge")
    [gate] = charge.gating.gates
    assert (gate.policy, gate.action, gate.always, gate.condition, gate.timeout) == (
        "charges-over-1000", "require_approval", False, "body.amount > 1000", "10m")
    assert charge.description.startswith("Create a charge. May need human approval (policy 'charges-over-1000') "
                                         "when body.amount > 1000: the call then waits for a reviewer's decision")
    assert charge.metadata()["approval"]["approval"] == "conditional"
    [denied] = conversion.skipped
    assert (denied.tool_name, denied.kind) == ("create_refund", "denied")
    assert denied.reason == "Always refused by policy 'block-refunds': refunds are not allowed for agents."
    kept = convert(openapi_document(), policies=policies, omit_denied=False).action("create_refund")
    assert kept.gating.denied and kept.metadata()["approval"]["denied"] == "always"
    assert "Always refused by policy 'block-refunds'" in kept.description


def test_only_enforced_active_pre_phase_policies_gate() -> None:
    everything = [{"when": {"always": True}, "then": {"action": "require_approval", "timeout": "5m"}}]
    ignored = [{"name": "shadow", "mode": "shadow", "rules": everything},
               {"name": "off", "is_active": False, "rules": everything},
               {"name": "after", "phase": "post", "rules": everything},
               {"name": "limits", "rules": [{"when": {"always": True},
                                             "then": {"action": "rate_limit", "window": "1m", "max_requests": 5}}]}]
    assert all(a.gating.gates == () for a in convert(openapi_document(), policies=ignored).actions)
    gated = convert(openapi_document(), policies=[Policy(id="p1", name="all-calls", rules=everything)])
    assert {a.gating.approval for a in gated.actions} == {"required"}
    assert all("Needs human approval (policy 'all-calls')" in a.description for a in gated.actions)


def test_the_path_policies_see_includes_the_base_path() -> None:
    policy = {"name": "service-charges", "rules": [{
        "when": {"field": "request.path", "op": "eq", "value": "/v1/proxy/services/payments/v1/charges"},
        "then": {"action": "require_approval"}}]}
    on_service = convert(openapi_document(), policies=[policy], base_path="/v1/proxy/services/payments")
    assert on_service.action("create_charge").gating.approval == "required"
    assert on_service.action("list_charges").gating.approval == "required"
    assert on_service.action("list_customers").gating.approval == "none"
    direct = convert(openapi_document(), policies=[policy])
    assert direct.action("create_charge").gating.approval == "none"


def test_policies_are_read_through_the_admin_api(ailink_gateway: EmulatorGateway) -> None:
    token = ailink_gateway.create_token(name="gated", upstream="payments", policies=[
        {"name": "no-refunds", "rules": [{"when": {"field": "request.path", "op": "eq", "value": "/v1/refunds"},
                                          "then": {"action": "deny", "message": "ask a human"}}]},
        {"name": "big-charges", "rules": [{"when": {"field": "request.body.amount", "op": "gt", "value": 100},
                                           "then": {"action": "require_approval", "timeout": "1m"}}]}])
    policies = policies_for_token(ailink_gateway.admin, token)
    assert [p.name for p in policies] == ["no-refunds", "big-charges"]
    assert policies_for_token(ailink_gateway.admin, ailink_gateway.create_token(name="free")) == []
    with AIlinkClient(token, ailink_gateway.url) as client:  # the gateway serves the document to the token
        conversion = convert(f"{ailink_gateway.url}/openapi.json", policies=policies, client=client)
    assert [s.tool_name for s in conversion.skipped] == ["create_refund"]
    assert conversion.action("create_charge").gating.approval == "conditional"
