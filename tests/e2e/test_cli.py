"""`ailink approvals ...` and `ailink sessions show` against the emulator, as a reviewer uses them."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

import ailink
from ailink._cli import main
from ailink.testing import EmulatorGateway
from ailink.types import Upstream

NEEDS_APPROVAL = {
    "name": "charges-need-approval",
    "rules": [{"when": {"field": "request.path", "op": "eq", "value": "/v1/charges"},
               "then": {"action": "require_approval", "timeout": "5m"}}],
}


@pytest.fixture
def cli(ailink_gateway: EmulatorGateway, monkeypatch: pytest.MonkeyPatch, tmp_path: object,
        capsys: pytest.CaptureFixture[str]) -> object:
    monkeypatch.setenv("AILINK_GATEWAY_URL", ailink_gateway.url)
    monkeypatch.setenv("AILINK_ADMIN_KEY", ailink_gateway.admin_key)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]

    def run(*args: str) -> tuple[int, str]:
        code = main(list(args))
        out = capsys.readouterr()
        text = out.out + out.err
        assert ailink_gateway.admin_key not in text
        return code, text

    return run


def _pending_charge(gateway: EmulatorGateway, token: str, session: str) -> str:
    with ailink.AIlinkClient(token, gateway.url, agent_name="cli-agent") as client, client.trace(session):
        response = client.post("/v1/charges", json={"amount": 5000, "currency": "usd", "customer": "cus_001"})
    assert response.status_code == 202
    return str(response.json()["approval_id"])


def test_review_approvals_from_the_command_line(ailink_gateway: EmulatorGateway, cli: object) -> None:
    run = cli  # type: ignore[assignment]
    assert run("approvals", "list") == (0, "No approvals.\n")
    token = ailink_gateway.create_token(policies=[NEEDS_APPROVAL])
    first = _pending_charge(ailink_gateway, token, "cli-session")
    second = _pending_charge(ailink_gateway, token, "cli-session-2")

    code, text = run("approvals", "list")
    assert code == 0 and first in text and second in text and "POST /v1/charges" in text and "cli-agent" in text
    assert token not in text

    assert run("approvals", "approve", first, "--reason", "checked")[0] == 0
    code, text = run("approvals", "approve", first)
    assert code == 1 and "not pending any more" in text
    code, text = run("approvals", "reject", second, "--reason", "too much")
    assert code == 0 and "rejected" in text
    assert run("approvals", "list") == (0, "No approvals.\n")
    code, text = run("approvals", "list", "--status", "all")
    assert code == 0 and first in text and "approved" in text and "rejected" in text

    code, text = run("sessions", "show", "cli-session")
    assert code == 0 and "session cli-session" in text and "POST /v1/charges" in text and "202" in text


def test_errors_are_clear_and_never_a_traceback(cli: object, monkeypatch: pytest.MonkeyPatch) -> None:
    run = cli  # type: ignore[assignment]
    code, text = run("sessions", "show", "no-such-session")
    assert code == 1 and "Traceback" not in text and "not found" in text.lower()
    code, text = run("approvals", "approve", "apr_missing")
    assert code == 1 and "Traceback" not in text
    monkeypatch.delenv("AILINK_ADMIN_KEY")
    with pytest.raises(SystemExit) as exited:
        main(["approvals", "list"])
    assert "AILINK_ADMIN_KEY" in str(exited.value.code)


# ---------------------------------------------------------------------- issue 18: what reviewers need


def _park(gateway: EmulatorGateway, token: str, session: str, **extra: object) -> str:
    body = {"amount": 5000, "currency": "usd", "customer": "cus_001", **extra}
    with ailink.AIlinkClient(token, gateway.url, agent_name="cli-agent") as client, client.trace(session):
        response = client.post("/v1/charges", json=body, params={"source": "agent"},
                               headers={"X-AIlink-Tool-Name": "create_charge"})
    assert response.status_code == 202
    return str(response.json()["approval_id"])


def test_ids_are_whole_in_a_pipe_and_in_a_narrow_terminal(ailink_gateway: EmulatorGateway, tmp_path: object) -> None:
    token = ailink_gateway.create_token(policies=[NEEDS_APPROVAL])
    ids = [_park(ailink_gateway, token, f"pipe-{i}") for i in range(3)]
    env = {**os.environ, "AILINK_GATEWAY_URL": ailink_gateway.url, "AILINK_ADMIN_KEY": ailink_gateway.admin_key,
           "COLUMNS": "80"}
    piped = subprocess.run([sys.executable, "-m", "ailink._cli", "approvals", "list"], capture_output=True,
                           text=True, timeout=60, env=env, cwd=str(tmp_path))  # stdout is a pipe: `| cat`
    assert piped.returncode == 0, piped.stderr
    lines = piped.stdout.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "REQUEST", "POLICY", "AGENT", "WHEN", "DECIDED", "BY"]
    for apr_id in ids:
        (line,) = [ln for ln in lines if apr_id in ln]
        assert line.split()[:4] == [apr_id, "pending", "POST", "/v1/charges"]
    assert ailink_gateway.admin_key not in piped.stdout + piped.stderr

    from rich.console import Console

    from ailink._cli_render import approval_rows, print_table

    items = ailink_gateway.admin.approvals.list(status="pending")
    for width in (80, 60, 45):
        out = io.StringIO()
        print_table(Console(file=out, width=width, force_terminal=True, color_system=None), "Approvals",
                    *approval_rows(items))
        text = out.getvalue()
        assert all(any(apr_id in line for line in text.splitlines()) for apr_id in ids), text
        assert all(len(line) <= width for line in text.splitlines()), text
    assert "not shown; --json has everything" in " ".join(text.split())  # columns dropped, never the id


def test_every_command_prints_json(ailink_gateway: EmulatorGateway, cli: object) -> None:
    run = cli  # type: ignore[assignment]
    token = ailink_gateway.create_token(policies=[NEEDS_APPROVAL])
    first, second = _park(ailink_gateway, token, "json-s1"), _park(ailink_gateway, token, "json-s2")

    code, text = run("approvals", "list", "--json")
    listed = json.loads(text)
    assert code == 0 and {a["id"] for a in listed} == {first, second}
    assert all(a["status"] == "pending" and a["request"]["method"] == "POST" for a in listed)
    code, text = run("approvals", "show", first, "--json")
    shown = json.loads(text)
    assert code == 0 and shown["id"] == first and shown["request"]["body_json"]["amount"] == 5000
    assert shown["request"]["query"] == "source=agent" and shown["policy"] == "charges-need-approval"
    code, text = run("approvals", "watch", "--json", "--max-events", "2", "--interval", "0.05")
    events = [json.loads(line) for line in text.splitlines()]
    assert code == 0 and [e["event"] for e in events] == ["pending", "pending"]
    assert {e["approval"]["id"] for e in events} == {first, second}
    code, text = run("approvals", "approve", first, "--reason", "ok", "--reviewer", "bob", "--json")
    assert code == 0 and json.loads(text) == {"id": first, "status": "approved", "updated": True,
                                              "reviewed_by": "bob", "review_channel": "cli"}
    code, text = run("approvals", "reject", second, "--json")
    assert code == 0 and json.loads(text)["status"] == "rejected"
    code, text = run("approvals", "reject", second, "--json")
    assert code == 1 and json.loads(text)["updated"] is False
    code, text = run("approvals", "list", "--status", "decided", "--json")
    assert code == 0 and {a["id"]: a["status"] for a in json.loads(text)} == {first: "approved", second: "rejected"}

    code, text = run("sessions", "list", "--json")
    assert code == 0 and {"json-s1", "json-s2"} <= {s["session_id"] for s in json.loads(text)}
    code, text = run("sessions", "show", "json-s1", "--json")
    session = json.loads(text)
    assert code == 0 and session["session_id"] == "json-s1"
    assert any(r["approval_id"] == first and r["reviewed_by"] == "bob" and r["review_channel"] == "cli"
               for r in session["requests"])
    code, text = run("audit", "list", "--session", "json-s1", "--json")
    rows = json.loads(text)
    assert code == 0 and rows and all(r["session_id"] == "json-s1" for r in rows)
    code, text = run("audit", "show", rows[0]["id"], "--json")
    assert code == 0 and json.loads(text)["id"] == rows[0]["id"]
    assert token not in text


def test_show_sessions_list_and_audit_for_people(ailink_gateway: EmulatorGateway, cli: object,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    run = cli  # type: ignore[assignment]
    token = ailink_gateway.create_token(policies=[NEEDS_APPROVAL])
    apr_id = _park(ailink_gateway, token, "people-s1", note="\x1b[2Jcleared?\x1b]0;title\x07",
                   api_key="sk-live-never-print-me-0123456789")
    code, text = run("approvals", "show", apr_id)
    assert code == 0
    for expected in (apr_id, "charges-need-approval", "POST /v1/charges", "cli-agent", "create_charge",
                     "people-s1", "source = agent", '"amount": 5000', "expires", f"ailink approvals approve {apr_id}"):
        assert expected in text, expected
    assert "\x1b" not in text and "\x07" not in text and "\\u001b[2Jcleared?" in text  # shown, not obeyed
    assert "sk-live-never-print-me" not in text and token not in text

    monkeypatch.setenv("AILINK_REVIEWER", "carol")
    code, text = run("approvals", "approve", apr_id, "--reason", "fine")
    assert code == 0 and "approved by carol" in text
    code, text = run("sessions", "list")
    assert code == 0 and "people-s1" in text
    code, text = run("sessions", "show", "people-s1")
    assert code == 0 and "approved by carol via cli" in text and '"fine"' in text
    code, text = run("audit", "list", "--session", "people-s1")
    assert code == 0 and apr_id in text and "approved by carol via cli: fine" in text


def test_version_and_help_name_the_environment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.strip() == f"ailink {ailink.__version__}"
    for args in (["--help"], ["approvals", "list", "--help"], ["approvals", "watch", "--help"],
                 ["sessions", "show", "--help"], ["audit", "list", "--help"]):
        with pytest.raises(SystemExit):
            main(args)
        out = capsys.readouterr().out
        for name in ("AILINK_GATEWAY_URL", "AILINK_ADMIN_KEY", "AILINK_REVIEWER", "AILINK_LOG"):
            assert name in out, (args, name)
    with pytest.raises(SystemExit):
        main(["approvals", "show", "--help"])
    assert "--json" in capsys.readouterr().out


def test_watch_decides_with_single_keys(ailink_gateway: EmulatorGateway) -> None:
    from rich.console import Console

    from ailink._cli_watch import Watcher

    token = ailink_gateway.create_token(policies=[NEEDS_APPROVAL])
    older, newer = _park(ailink_gateway, token, "watch-1"), _park(ailink_gateway, token, "watch-2")
    answers = iter(["approved from the watch", "", "no"])
    out = io.StringIO()
    watcher = Watcher(ailink_gateway.admin, Console(file=out, width=120, force_terminal=True, color_system=None),
                      reviewer="dave", read_key=lambda timeout: None, ask=lambda prompt: next(answers))
    watcher.refresh()
    assert [i.id for i in watcher.items] == [older, newer]  # oldest first
    watcher.console.print(watcher.render())
    assert older in out.getvalue() and newer in out.getvalue() and "a approve" in out.getvalue()
    assert watcher.handle("j") and watcher.current().id == newer
    assert watcher.handle("a")  # asks for a reason, then approves the selected one
    assert watcher.message == f"{newer} approved." and [i.id for i in watcher.items] == [older]
    assert watcher.handle("k") and watcher.handle("r")  # an empty reason is allowed
    assert watcher.items == [] and watcher.handle("r") and watcher.handle("down")  # nothing left: keys are harmless
    assert not watcher.handle("q")
    decided = {a["id"]: a for a in ailink_gateway._http.get("/api/v1/approvals").json()}
    assert (decided[newer]["status"], decided[newer]["reviewed_by"], decided[newer]["review_channel"],
            decided[newer]["reason"]) == ("approved", "dave", "cli", "approved from the watch")
    assert (decided[older]["status"], decided[older]["reason"]) == ("rejected", None)


def test_sessions_show_names_the_target_that_served_each_call(ailink_gateway: EmulatorGateway, cli: object) -> None:
    run = cli  # type: ignore[assignment]
    with ailink_gateway.admin as admin:
        down = admin.credentials.create("down-key", "openai", "sk-down-key-000000")
        token = admin.tokens.create("two-keys", "http://127.0.0.1:9", upstreams=[
            Upstream("http://127.0.0.1:9", priority=1, credential_id=down.id),
            Upstream("http://llm.mock", priority=2)]).token_id
    with ailink.AIlinkClient(token, ailink_gateway.url) as client, client.trace("routed-run"):
        assert client.chat("mock-gpt", "hello").content == "Echo: hello"
    code, text = run("sessions", "show", "routed-run")
    shown = text.replace("\n", " ")
    assert code == 0 and "via http://llm.mock (weighted: failover from http://127.0.0.1:9: Upstream" in shown
    assert "sk-down-key" not in text
