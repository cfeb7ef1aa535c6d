"""`ailink approvals ...` and `ailink sessions show` against the emulator, as a reviewer uses them."""

from __future__ import annotations

import pytest

import ailink
from ailink._cli import main
from ailink.testing import EmulatorGateway

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
