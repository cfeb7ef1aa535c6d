"""OpenAPI document → typed tool actions: the realistic fixture, the emulator's own document, and the
corner cases of schemas, names, parameters and references (no network: documents are dicts or files)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from ailink import InvalidToolArgumentsError
from ailink.adapters import CallContext, GatewayTool, gateway_tools
from ailink.emulator._mock_payments import openapi_document
from ailink.openapi import Filters, OpenAPIConversionWarning, OpenAPIError, OperationAction, convert

FIXTURE = Path(__file__).parent / "fixtures" / "code_hosting.yaml"
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _walk(node: Any) -> list[Any]:
    found, stack = [], [node]
    while stack:
        item = stack.pop()
        found.append(item)
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def doc(paths: dict[str, Any], *, version: str = "3.1.0", components: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"openapi": version, "info": {"title": "t", "version": "1"}, "paths": paths,
            "components": components or {}}


def op(**fields: Any) -> dict[str, Any]:
    return {"responses": {"200": {"description": "ok"}}, **fields}


def one(document: dict[str, Any], **options: Any) -> OperationAction:
    conversion = convert(document, **options)
    assert conversion.errors == [], conversion.errors
    [action] = conversion.actions
    return action


def body_of(schema: dict[str, Any]) -> dict[str, Any]:
    return {"/x": {"post": op(operationId="make", requestBody={"required": True, "content": {
        "application/json": {"schema": schema}}})}}


# ----------------------------------------------------------------------------- the realistic document
def test_the_realistic_document_converts_with_no_error() -> None:
    conversion = convert(FIXTURE, validate=True)  # also valid OpenAPI (openapi-spec-validator)
    assert conversion.errors == [] and conversion.warnings == []
    assert conversion.openapi == "3.0.3" and conversion.title == "Code hosting REST API (test fixture)"
    assert len(conversion.actions) == 61
    [skipped] = conversion.skipped  # the binary upload: tools send JSON bodies only
    assert (skipped.operation_id, skipped.kind) == ("repos/upload-release-asset", "unsupported")
    assert "application/octet-stream" in skipped.reason
    names = [a.name for a in conversion.actions]
    assert len(set(names)) == len(names) and all(TOOL_NAME.match(n) for n in names)
    for action in conversion.actions:
        schema = action.args_schema()
        Draft202012Validator.check_schema(schema)
        assert not any(isinstance(n, dict) and "$ref" in n for n in _walk(schema)), action.name
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert action.args_model.model_json_schema() == schema
        json.dumps(schema)  # plain JSON: no YAML dates, no shared cycles


def test_names_keep_the_operation_id_but_for_what_tool_names_forbid() -> None:
    conversion = convert(FIXTURE)
    assert conversion.action("repos_get").operation.operation_id == "repos/get"
    assert conversion.action("issues_list-for-repo").operation.path == "/repos/{owner}/{repo}/issues"
    rate = conversion.action("get_rate_limit")  # no operationId: method and path
    assert rate.operation.operation_id is None and rate.operation.path == "/rate_limit"
    prefixed = convert(FIXTURE, name_prefix="gh_", filters=Filters(include_operations=["meta/*"]))
    assert [a.name for a in prefixed.actions] == ["gh_meta_get"]
    spaced = convert(FIXTURE, name_prefix="code host.", filters=Filters(include_operations=["meta/*"]))
    assert [a.name for a in spaced.actions] == ["code_host_meta_get"]


def test_references_combinators_enums_defaults_and_recursion() -> None:
    conversion = convert(FIXTURE)
    listing = conversion.action("issues_list-for-repo").args_schema()["properties"]
    assert listing["state"] == {"type": "string", "enum": ["open", "closed", "all"], "default": "open",
                                "description": "Which issues to list."}  # a $ref to a $ref
    assert listing["per_page"]["maximum"] == 100 and listing["per_page"]["default"] == 30
    create = conversion.action("issues_create").args_schema()
    body = create["properties"]["body"]
    assert create["required"] == ["owner", "repo", "body"]
    assert body["properties"]["title"]["oneOf"] == [{"type": "string", "minLength": 1}, {"type": "integer"}]
    assert body["properties"]["milestone"]["anyOf"] == [{"type": "string"}, {"type": "integer"}, {"type": "null"}]
    assert body["properties"]["body"]["type"] == ["string", "null"]  # 3.0 nullable
    task = body["properties"]["tasks"]["items"]
    assert task["properties"]["subtasks"]["items"] == {"type": "object",
                                                       "description": "task (recursive: not expanded further)"}
    update = conversion.action("issues_update").args_schema()["properties"]["body"]
    assert update["type"] == "object" and {"title", "tasks", "state", "state_reason"} <= set(update["properties"])
    assert update["properties"]["state_reason"]["enum"] == ["completed", "not_planned", "reopened", None]
    labels = conversion.action("issues_add-labels").args_schema()["properties"]["body"]
    assert [branch["type"] for branch in labels["oneOf"]] == ["object", "array"]
    team = conversion.action("teams_create").args_schema()["properties"]["body"]["properties"]
    assert team["parent_team_id"]["type"] == ["integer", "null"]


def test_header_parameters_are_not_arguments_and_deprecation_is_said() -> None:
    conversion = convert(FIXTURE)
    notifications = conversion.action("activity_list-notifications-for-authenticated-user").args_schema()
    assert "X-Api-Version" not in notifications["properties"] and "filter" in notifications["properties"]
    events = conversion.action("activity_list-repo-events")
    assert "Deprecated." in events.description and events.operation.deprecated


def test_only_write_operations_take_an_idempotency_key() -> None:
    conversion = convert(FIXTURE)
    assert "idempotency_key" not in conversion.action("issues_get").args_schema()["properties"]
    assert "idempotency_key" in conversion.action("issues_create").args_schema()["properties"]
    assert "idempotency_key" in conversion.action("repos_delete").args_schema()["properties"]
    with pytest.raises(InvalidToolArgumentsError, match="unexpected argument 'idempotency_key'"):
        conversion.action("issues_get").parse({"owner": "o", "repo": "r", "issue_number": 1,
                                               "idempotency_key": "k1"})


def test_filters_by_tag_operation_and_method() -> None:
    names = lambda **f: [a.name for a in convert(FIXTURE, filters=Filters(**f)).actions]  # noqa: E731
    assert names(include_tags=["gists"]) == ["gists_list", "gists_create", "gists_get", "gists_delete"]
    assert names(include_tags=["gists"], methods=["GET"]) == ["gists_list", "gists_get"]
    assert names(include_tags=["gists"], exclude_methods=["delete", "post"]) == ["gists_list", "gists_get"]
    assert names(include_operations=["pulls/*"], exclude_operations=["*merge*"]) == [
        "pulls_list", "pulls_create", "pulls_get", "pulls_update", "pulls_create-review"]
    everything_but = names(exclude_tags=["repos", "issues", "pulls", "reactions", "releases", "gists", "teams",
                                         "users", "search", "activity"])
    assert everything_but == ["get_rate_limit", "meta_get"]
    filtered = convert(FIXTURE, filters=Filters(include_tags=["meta"]))
    assert {s.kind for s in filtered.skipped} == {"filtered"} and len(filtered.skipped) == 60  # filters come first


# ----------------------------------------------------------------------------- building the request
def test_parameters_are_placed_where_the_document_says() -> None:
    conversion = convert(FIXTURE)
    call = conversion.action("issues_list-for-repo").parse(
        {"owner": "octo org", "repo": "héllo", "state": "closed", "per_page": 50, "labels": "bug,ui"})
    assert call.method == "GET" and call.path == "/repos/octo%20org/h%C3%A9llo/issues"
    assert call.query == {"state": "closed", "per_page": "50", "labels": "bug,ui"} and call.body is None
    mine = conversion.action("repos_list-for-authenticated-user").parse({"affiliation": ["owner", "collaborator"]})
    assert mine.query == {"affiliation": "owner,collaborator"}  # form, explode: false
    events = conversion.action("activity_list-repo-events").parse({"owner": "o", "repo": "r", "types": ["a", "b"]})
    assert events.query == {"types": ["a", "b"]}  # form, explode: true → repeated
    notes = conversion.action("activity_list-notifications-for-authenticated-user").parse(
        {"all": True, "filter": {"reason": "mention", "repository": "o/r"}})
    assert notes.query == {"all": "true", "filter[reason]": "mention", "filter[repository]": "o/r"}
    merge = conversion.action("pulls_merge").parse({"owner": "o", "repo": "r", "pull_number": 7,
                                                    "body": {"merge_method": "squash"}})
    assert (merge.method, merge.path, merge.body) == ("PUT", "/repos/o/r/pulls/7/merge", {"merge_method": "squash"})


def test_the_base_path_prefixes_the_request_path() -> None:
    action = convert(openapi_document(), base_path="/v1/proxy/services/payments").action("retrieve_customer")
    call = action.parse({"customer_id": "cus_002"})
    assert call.path == "/v1/customers/cus_002" and call.full_path == "/v1/proxy/services/payments/v1/customers/cus_002"


@pytest.mark.parametrize("value", ["../../admin", "..", ".", "a/b", "a\\b", "100%", "line\nbreak", ""])
def test_a_path_argument_cannot_change_the_paths_shape(value: str) -> None:
    action = convert(FIXTURE).action("gists_get")
    with pytest.raises(InvalidToolArgumentsError, match="gist_id: a path argument may not"):
        action.parse({"gist_id": value})


def test_invalid_arguments_are_refused_readably_without_echoing_values() -> None:
    conversion = convert(FIXTURE)
    create = conversion.action("issues_create")
    secret = "sk-live-4242424242424242"
    with pytest.raises(InvalidToolArgumentsError) as caught:
        create.parse({"owner": "o", "repo": secret, "body": {"title": ["x"], "assignees": "me", "tasks": [{}]},
                      "verbose": True})
    message = str(caught.value)
    assert "arguments: unexpected argument 'verbose'" in message
    assert "body.assignees: must be an array" in message
    assert "body.tasks[0]: missing required field 'text'" in message
    assert "body.title: does not match any of the allowed forms" in message
    assert secret not in message
    with pytest.raises(InvalidToolArgumentsError, match="per_page: must be <= 100"):
        conversion.action("issues_list-for-repo").parse({"owner": "o", "repo": "r", "per_page": 500})
    with pytest.raises(InvalidToolArgumentsError, match="missing required arguments 'owner', 'repo'"):
        create.parse({"body": {"title": "t"}})
    with pytest.raises(InvalidToolArgumentsError, match=r"body\.content: must be one of"):
        conversion.action("reactions_create-for-issue").parse(
            {"owner": "o", "repo": "r", "issue_number": 1, "body": {"content": "thumbs"}})
    for not_an_object in ("[1, 2]", "not json", 42):
        with pytest.raises(InvalidToolArgumentsError, match=r"JSON object|not valid JSON"):
            create.parse(not_an_object)  # type: ignore[arg-type]


def test_nulls_for_optional_fields_are_dropped_where_the_schema_refuses_null() -> None:
    create = convert(FIXTURE).action("issues_create")
    call = create.parse({"owner": "o", "repo": "r", "body": {"title": "t", "assignees": None, "body": None,
                                                            "tasks": [{"text": "a", "done": None}]}})
    assert call.body == {"title": "t", "body": None, "tasks": [{"text": "a"}]}  # body may be null; the rest not


def test_the_idempotency_key_rests_on_the_call_not_on_the_run() -> None:
    action = convert(openapi_document()).action("create_charge")
    tool = GatewayTool(action)
    args = {"body": {"amount": 300, "currency": "usd"}}
    context = CallContext(session_id="s1", call_id="call_1")
    first = tool.prepare(args, context)[1]
    assert first == tool.prepare(copy.deepcopy(args), context)[1]
    assert first != tool.prepare(args, CallContext(session_id="s1", call_id="call_2"))[1]
    assert tool.prepare({**args, "idempotency_key": "mine-1"}, context)[1] == "mine-1"


# ----------------------------------------------------------------------------- schema dialects
def test_openapi_30_dialect_becomes_json_schema() -> None:
    schema = {"type": "object", "required": ["id", "n"], "properties": {
        "id": {"type": "string", "readOnly": True},
        "n": {"type": "number", "maximum": 10, "exclusiveMaximum": True, "minimum": 0, "exclusiveMinimum": False},
        "kind": {"type": "string", "enum": ["a", "b"], "nullable": True, "example": "a"},
        "meta": {"type": "object", "x-internal": True, "discriminator": {"propertyName": "t"}, "xml": {"name": "m"}},
    }}
    body = one(doc(body_of(schema), version="3.0.3")).args_schema()["properties"]["body"]
    assert body["required"] == ["n"] and "id" not in body["properties"]  # readOnly: never sent
    assert body["properties"]["n"] == {"type": "number", "exclusiveMaximum": 10, "minimum": 0}
    assert body["properties"]["kind"] == {"type": ["string", "null"], "enum": ["a", "b", None], "examples": ["a"]}
    assert body["properties"]["meta"] == {"type": "object"}


def test_openapi_31_features_pass_through() -> None:
    components = {"schemas": {"Money": {"type": "integer", "minimum": 0, "description": "cents"}}}
    schema = {"type": "object", "properties": {
        "amount": {"$ref": "#/components/schemas/Money", "description": "What to charge"},
        "mode": {"const": "live"},
        "tags": {"type": ["array", "null"], "items": {"type": "string"}, "prefixItems": [{"type": "string"}]},
        "anything": True,
        "nothing": False,
    }, "additionalProperties": False}
    body = one(doc(body_of(schema), components=components)).args_schema()["properties"]["body"]
    assert body["properties"]["amount"] == {"type": "integer", "minimum": 0, "description": "What to charge"}
    assert body["properties"]["mode"] == {"const": "live"}
    assert body["properties"]["anything"] == {} and body["properties"]["nothing"] == {"not": {}}
    assert body["additionalProperties"] is False


def test_a_schema_that_refers_to_itself_is_expanded_once_then_cut() -> None:
    components = {"schemas": {"Node": {"type": "object", "properties": {
        "name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}}}}
    action = one(doc(body_of({"$ref": "#/components/schemas/Node"}), components=components))
    children = action.args_schema()["properties"]["body"]["properties"]["children"]
    assert children["items"] == {"type": "object", "description": "Node (recursive: not expanded further)"}
    action.parse({"body": {"name": "a", "children": [{"name": "b", "children": [{"deeper": True}]}]}})


def test_argument_names_avoid_reserved_and_clashing_names() -> None:
    paths = {"/items/{id}": {"get": op(operationId="get_item", parameters=[
        {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}},
        {"name": "id", "in": "query", "schema": {"type": "string"}},
        {"name": "config", "in": "query", "schema": {"type": "string"}},
        {"name": "page[size]", "in": "query", "schema": {"type": "integer"}},
        {"name": "2fa", "in": "query", "schema": {"type": "boolean"}},
    ])}}
    action = one(doc(paths))
    properties = action.args_schema()["properties"]
    assert list(properties) == ["id", "id_query", "config_query", "page_size", "p_2fa"]
    assert properties["page_size"]["description"] == "(the query parameter 'page[size]')"
    call = action.parse({"id": 5, "id_query": "x", "config_query": "c", "page_size": 10, "p_2fa": False})
    assert call.path == "/items/5" and call.query == {"id": "x", "config": "c", "page[size]": "10", "2fa": "false"}


def test_tool_names_are_unique_and_fit() -> None:
    long_id = "a" * 80
    paths = {"/a": {"get": op(operationId="same"), "post": op(operationId="same")},
             "/b": {"get": op(operationId=long_id), "put": op(operationId=long_id + "b")},
             "/c/{x}": {"delete": op(parameters=[{"name": "x", "in": "path", "required": True,
                                                   "schema": {"type": "string"}}])}}
    names = [a.name for a in convert(doc(paths)).actions]
    assert names[:2] == ["same", "same_2"] and names[4] == "delete_c_x"
    assert len(names[2]) == len(names[3]) == 64 and names[2] != names[3] and all(TOOL_NAME.match(n) for n in names)


# ----------------------------------------------------------------------------- what cannot be converted
def test_an_operation_that_cannot_be_converted_is_an_error_the_others_stay() -> None:
    paths = {"/ok": {"get": op(operationId="fine")},
             "/broken": {"post": op(operationId="broken", requestBody={"content": {"application/json": {
                 "schema": {"$ref": "#/components/schemas/Missing"}}}})},
             "/bad-schema": {"post": op(operationId="bad_schema", requestBody={"content": {"application/json": {
                 "schema": {"type": "object", "properties": {"n": {"type": "integer", "minimum": "zero"}}}}}})},
             "/undeclared/{thing}": {"get": op(operationId="undeclared")},
             "/search?q={q}": {"get": op(operationId="query_in_path", parameters=[
                 {"name": "q", "in": "path", "required": True, "schema": {"type": "string"}}])},
             "x-internal": {"note": "an extension of the paths object, not a path"},
             "/head": {"head": op(operationId="peek")}}
    conversion = convert(doc(paths))
    assert [a.name for a in conversion.actions] == ["fine"]
    errors = {e.operation_id: e.message for e in conversion.errors}
    assert errors["broken"] == "cannot resolve $ref '#/components/schemas/Missing'"
    assert "not valid JSON Schema" in errors["bad_schema"]
    assert "names thing but no such path parameter" in errors["undeclared"]
    assert errors["query_in_path"].startswith("the path template cannot be sent: path may not contain '?'")
    assert [(s.operation_id, s.kind) for s in conversion.skipped] == [("peek", "unsupported")]
    with pytest.warns(OpenAPIConversionWarning, match="4 operation"):
        tools = gateway_tools(openapi=doc(paths), token="ailink_v1_test", gateway_url="http://127.0.0.1:9")
    assert [t.action.name for t in tools] == ["fine"]
    with pytest.raises(OpenAPIError, match="4 operation"):
        gateway_tools(openapi=doc(paths), token="ailink_v1_test", gateway_url="http://127.0.0.1:9", strict=True)


def test_huge_or_deep_schemas_are_refused_not_expanded_for_ever() -> None:
    wide = {f"S{i}": {"type": "object", "properties": {f"p{j}": {"$ref": f"#/components/schemas/S{i + 1}"}
                                                         for j in range(3)}} for i in range(20)}
    wide["S20"] = {"type": "string"}
    conversion = convert(doc(body_of({"$ref": "#/components/schemas/S0"}), components={"schemas": wide}))
    [error] = conversion.errors
    assert "larger than" in error.message  # 3^20 nodes once inlined
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(200):
        deep = {"type": "array", "items": deep}
    [error] = convert(doc(body_of(deep))).errors
    assert "nests deeper than" in error.message


def test_documents_that_are_not_openapi_3_are_refused(tmp_path: Path) -> None:
    with pytest.raises(OpenAPIError, match=r"Swagger 2\.0 documents are not supported"):
        convert({"swagger": "2.0", "paths": {}})
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(OpenAPIError, match="top level"):
        convert(tmp_path / "list.json")
    (tmp_path / "broken.yaml").write_text("openapi: 3.1.0\npaths: {/a: [unclosed\n")
    with pytest.raises(OpenAPIError, match="neither JSON nor YAML"):
        convert(tmp_path / "broken.yaml")
    with pytest.raises(OpenAPIError, match="cannot read"):
        convert(tmp_path / "missing.yaml")
    with pytest.raises(OpenAPIError, match="must be a dict, a file path or an http"):
        convert(42)  # type: ignore[arg-type]


def test_yaml_reads_as_yaml_1_2(tmp_path: Path) -> None:
    (tmp_path / "api.yaml").write_text(
        "openapi: 3.0.3\ninfo: {title: t, version: 1.0}\npaths:\n  /a:\n    post:\n      operationId: a\n"
        "      requestBody:\n        content:\n          application/json:\n            schema:\n"
        "              type: object\n              properties:\n                on: {type: boolean, default: no}\n"
        "                since: {type: string, default: 2024-01-01}\n      responses: {'200': {description: ok}}\n")
    body = one(str(tmp_path / "api.yaml")).args_schema()["properties"]["body"]["properties"]
    assert body == {"on": {"type": "boolean", "default": "no"}, "since": {"type": "string", "default": "2024-01-01"}}


def test_references_to_files_beside_a_file_document(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "pet.json").write_text(json.dumps({"Pet": {"type": "object", "properties": {
        "name": {"type": "string"}, "owner": {"$ref": "#/Owner"}}}, "Owner": {"type": "string"}}))
    (tmp_path / "api.json").write_text(json.dumps(doc(body_of({"$ref": "schemas/pet.json#/Pet"}))))
    body = one(tmp_path / "api.json").args_schema()["properties"]["body"]
    assert body["properties"] == {"name": {"type": "string"}, "owner": {"type": "string"}}
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "api.json").write_text(json.dumps(doc(body_of({"$ref": "../schemas/pet.json#/Pet"}))))
    [error] = convert(tmp_path / "inner" / "api.json").errors
    assert "must be in the document's folder" in error.message
    [error] = convert(doc(body_of({"$ref": "https://example.test/pet.json#/Pet"}))).errors
    assert "only references within the document" in error.message


# ----------------------------------------------------------------------------- the emulator's document
def test_the_emulators_document_converts_and_describes_the_mock() -> None:
    conversion = convert(openapi_document(), validate=True)
    assert conversion.errors == [] and conversion.skipped == []
    assert [a.name for a in conversion.actions] == ["list_customers", "retrieve_customer", "list_charges",
                                                    "create_charge", "retrieve_charge", "create_refund"]
    charge = conversion.action("create_charge").args_schema()["properties"]["body"]
    assert charge["required"] == ["amount"] and charge["properties"]["currency"]["enum"] == ["usd", "eur", "gbp"]


def test_import_ailink_never_imports_the_openapi_libraries() -> None:
    code = ("import sys, ailink, ailink.adapters, ailink.testing; ailink.AIlinkClient; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('jsonschema', 'referencing', 'openapi_spec_validator', 'ailink._openapi')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_unknown_options_are_refused_by_name() -> None:
    with pytest.raises(TypeError, match="unknown tool option"):
        gateway_tools(openapi=openapi_document(), includ_tags=["x"])  # type: ignore[call-arg]


def test_a_document_url_that_cannot_be_fetched_is_a_typed_error_without_its_password() -> None:
    with pytest.raises(OpenAPIError, match="cannot fetch") as caught:
        convert("http://reader:s3cret-pass@127.0.0.1:9/openapi.json")
    assert "s3cret-pass" not in str(caught.value)
