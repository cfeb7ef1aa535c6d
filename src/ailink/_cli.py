"""The ``ailink`` command: ``dev`` (the emulator), ``approvals``, ``sessions`` and ``demo``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ailink._config import DEFAULT_GATEWAY_URL
from ailink._secrets import scrub
from ailink._session_tree import render_session

ADMIN_KEY_FILE = Path(".ailink") / "admin_key"


def _rich() -> Any:
    try:
        import rich.console
    except ImportError:  # pragma: no cover - only without the extra
        sys.exit("ailink's CLI needs the emulator extra: pip install 'ailink-sdk[emulator]'")
    return rich


def _admin_key(explicit: str | None) -> str:
    key = explicit or os.environ.get("AILINK_ADMIN_KEY")
    if not key and ADMIN_KEY_FILE.exists():
        key = ADMIN_KEY_FILE.read_text().strip()
    if not key:
        sys.exit("No admin key: set AILINK_ADMIN_KEY (or run `ailink dev`, which writes .ailink/admin_key).")
    return key


def _print_error(console: Any, error: BaseException) -> None:
    """An error as plain red text (never read as markup), secrets and URL passwords hidden."""
    from rich.text import Text

    console.print(Text(scrub(str(error) or type(error).__name__), style="red"))


def _admin(args: argparse.Namespace) -> Any:
    from ailink._client import AdminClient

    return AdminClient(admin_key=_admin_key(args.admin_key), gateway_url=args.gateway_url)


def _cmd_approvals(args: argparse.Namespace) -> int:
    rich = _rich()
    from rich.table import Table

    from ailink._errors import AIlinkError

    console = rich.console.Console()
    with _admin(args) as admin:
        try:
            if args.action == "list":
                status = None if args.status == "all" else args.status
                items = admin.approvals.list(status=status)
                table = Table(title=f"Approvals ({args.status})")
                for column in ("id", "status", "request", "agent", "created", "expires"):
                    table.add_column(column)
                for item in items:
                    table.add_row(item.id, item.status, item.summary_text, str(item.request_summary.get("agent") or ""),
                                  item.created_at or "", item.expires_at or "")
                console.print(table if items else "No approvals.")
                return 0
            decision = admin.approvals.decide(args.id, "approved" if args.action == "approve" else "rejected",
                                              args.reason)
        except AIlinkError as exc:
            _print_error(console, exc)
            return 1
        verb = "approved" if args.action == "approve" else "rejected"
        if decision.updated:
            console.print(f"Approval {decision.id} {verb}.")
            return 0
        console.print(f"[yellow]Approval {decision.id} was not pending any more (status: {decision.status}).[/yellow]")
        return 1


def _cmd_sessions(args: argparse.Namespace) -> int:
    rich = _rich()
    from ailink._errors import AIlinkError

    console = rich.console.Console()
    with _admin(args) as admin:
        try:
            session = admin.sessions.get(args.id)
        except AIlinkError as exc:
            _print_error(console, exc)
            return 1
    console.print(render_session(session))
    return 0


def _cmd_dev(argv: list[str]) -> int:
    try:
        from ailink.emulator import main_dev
    except ImportError:
        sys.exit("`ailink dev` needs the emulator extra: pip install 'ailink-sdk[emulator]'")
    return main_dev(argv)


def _cmd_demo(args: argparse.Namespace) -> int:
    from ailink._demo.runner import run_demo

    return run_demo(framework=args.framework, auto_approve=args.auto_approve, approval_delay=args.approval_delay)


def build_parser() -> argparse.ArgumentParser:
    from ailink._demo.runner import demo_frameworks

    parser = argparse.ArgumentParser(prog="ailink", description="AIlink agent toolkit")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="run the local gateway emulator (ailink dev --help)", add_help=False)

    def with_gateway(p: argparse.ArgumentParser) -> None:
        p.add_argument("--gateway-url", default=os.environ.get("AILINK_GATEWAY_URL") or DEFAULT_GATEWAY_URL)
        p.add_argument("--admin-key", default=None, help=argparse.SUPPRESS)

    approvals = sub.add_parser("approvals", help="review approvals (list, approve, reject)")
    approvals_sub = approvals.add_subparsers(dest="action", required=True)
    listing = approvals_sub.add_parser("list", help="list approvals")
    listing.add_argument("--status", default="pending", choices=["pending", "approved", "rejected", "expired",
                                                                  "cancelled", "all"])
    with_gateway(listing)
    for action in ("approve", "reject"):
        p = approvals_sub.add_parser(action, help=f"{action} a pending approval")
        p.add_argument("id")
        p.add_argument("--reason", default=None)
        with_gateway(p)

    sessions = sub.add_parser("sessions", help="inspect sessions")
    sessions_sub = sessions.add_subparsers(dest="action", required=True)
    show = sessions_sub.add_parser("show", help="a session's calls as a tree by span")
    show.add_argument("id")
    with_gateway(show)

    demo = sub.add_parser("demo", help="run the end-to-end demo on an in-process emulator")
    demo.add_argument("--framework", default="langchain", choices=demo_frameworks())
    demo.add_argument(
        "--auto-approve", action="store_true", help="approve automatically (also without a TTY or with CI=true)"
    )
    demo.add_argument("--approval-delay", type=float, default=1.5, help="seconds before an automatic approval")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ailink`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["dev"]:
        return _cmd_dev(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command in ("approvals", "sessions"):
        import httpx

        try:
            return _cmd_approvals(args) if args.command == "approvals" else _cmd_sessions(args)
        except (ValueError, httpx.InvalidURL) as exc:  # a malformed --gateway-url or setting
            _print_error(_rich().console.Console(stderr=True), exc)
            return 2
    return _cmd_demo(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
