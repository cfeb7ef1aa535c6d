"""The ``ailink`` command: ``dev`` (the emulator), ``approvals``, ``sessions``, ``audit`` and ``demo``."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from ailink._config import DEFAULT_GATEWAY_URL
from ailink._secrets import scrub
from ailink._session_tree import render_session
from ailink._version import __version__

ADMIN_KEY_FILE = Path(".ailink") / "admin_key"
STATUSES = ["pending", "approved", "rejected", "expired", "cancelled", "decided", "all"]
DECIDED = "approved,rejected,expired,cancelled"

ENVIRONMENT_HELP = """\
environment:
  AILINK_GATEWAY_URL   the gateway (default: http://localhost:8443; --gateway-url wins)
  AILINK_ADMIN_KEY     the admin key for approvals, sessions and audit (else .ailink/admin_key,
                       written by `ailink dev`)
  AILINK_REVIEWER      your name on decisions (default: your login name; --reviewer wins)
  AILINK_API_KEY       an agent's virtual token (read by the client library, not by these commands)
  AILINK_LOG           info or debug: the client library logs waits, retries and outcomes to stderr
  NO_COLOR             plain output without colours
Every list and show command takes --json (the management API's objects, for scripts)."""


def _rich() -> Any:
    try:
        import rich.console
    except ImportError:  # pragma: no cover - only without the extra
        sys.exit("ailink's CLI needs rich (a dependency of ailink-sdk): pip install 'rich>=13.7'")
    return rich


def _console(stderr: bool = False) -> Any:
    return _rich().console.Console(stderr=stderr)


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


def _reviewer(args: argparse.Namespace) -> str | None:
    if args.reviewer:
        return str(args.reviewer)
    try:
        return os.environ.get("AILINK_REVIEWER") or getpass.getuser() or None
    except (KeyError, OSError):  # no login name (e.g. a container user without a passwd entry)
        return None


def _dump(value: Any) -> Any:
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


# ---------------------------------------------------------------------- approvals
def _cmd_approvals(args: argparse.Namespace) -> int:
    from ailink._cli_render import approval_rows, print_approval, print_json, print_table
    from ailink._errors import AIlinkError

    console = _console()
    with _admin(args) as admin:
        try:
            if args.action == "list":
                status = {"all": None, "decided": DECIDED}.get(args.status, args.status)
                items = admin.approvals.list(status=status)[: args.limit]
                if args.json:
                    print_json(console, [_dump(i) for i in items])
                elif not items:
                    console.print("No approvals.", markup=False)
                else:
                    print_table(console, f"Approvals ({args.status})", *approval_rows(items))
                return 0
            if args.action == "show":
                item = admin.approvals.get(args.id)
                if args.json:
                    print_json(console, _dump(item))
                else:
                    print_approval(console, item)
                return 0
            if args.action == "watch":
                return _watch(args, admin, console)
            decision = "approved" if args.action == "approve" else "rejected"
            reviewer = _reviewer(args)
            result = admin.approvals.decide(args.id, decision, args.reason, reviewed_by=reviewer, channel="cli")
        except AIlinkError as exc:
            _print_error(_console(stderr=True), exc)
            return 1
    if args.json:
        print_json(console, {**_dump(result), "reviewed_by": reviewer if result.updated else None,
                             "review_channel": "cli" if result.updated else None})
        return 0 if result.updated else 1
    from rich.text import Text

    if result.updated:
        by = f" by {reviewer}" if reviewer else ""
        console.print(Text(f"Approval {result.id} {decision}{by} (recorded with channel cli)."))
        return 0
    console.print(Text(f"Approval {result.id} was not pending any more (status: {result.status}).", style="yellow"))
    return 1


def _watch(args: argparse.Namespace, admin: Any, console: Any) -> int:
    from ailink._cli_watch import Watcher, stream_json, terminal_keys

    if args.json or not (sys.stdin.isatty() and console.is_terminal):
        try:
            return stream_json(admin, sys.stdout, interval=args.interval, max_events=args.max_events)
        except KeyboardInterrupt:
            return 0
    with terminal_keys() as (read_key, ask):
        try:
            return Watcher(admin, console, reviewer=_reviewer(args), read_key=read_key, ask=ask,
                           interval=args.interval).run()
        except KeyboardInterrupt:
            return 0


# ---------------------------------------------------------------------- sessions and audit
def _cmd_sessions(args: argparse.Namespace) -> int:
    from ailink._cli_render import print_json, print_table, session_rows
    from ailink._errors import AIlinkError

    console = _console()
    with _admin(args) as admin:
        try:
            if args.action == "list":
                items = admin.sessions.list(limit=args.limit)
                if args.json:
                    print_json(console, [_dump(s) for s in items])
                elif not items:
                    console.print("No sessions.", markup=False)
                else:
                    print_table(console, "Sessions", *session_rows(items))
                return 0
            session = admin.sessions.get(args.id)
        except AIlinkError as exc:
            _print_error(_console(stderr=True), exc)
            return 1
    if args.json:
        print_json(console, _dump(session))
    else:
        console.print(render_session(session))
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    from ailink._cli_render import audit_rows, print_json, print_table
    from ailink._errors import AIlinkError

    console = _console()
    with _admin(args) as admin:
        try:
            if args.action == "show":
                row = admin.audit.get(args.id)
                print_json(console, _dump(row))  # one row: every field, as JSON either way
                return 0
            items = admin.audit.list(limit=args.limit, offset=args.offset, session_id=args.session,
                                     agent_name=args.agent, status=args.status)
        except AIlinkError as exc:
            _print_error(_console(stderr=True), exc)
            return 1
    if args.json:
        print_json(console, [_dump(r) for r in items])
    elif not items:
        console.print("No audit rows.", markup=False)
    else:
        print_table(console, "Audit log (newest first)", *audit_rows(items))
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


# ---------------------------------------------------------------------- the parser
def build_parser() -> argparse.ArgumentParser:
    from ailink._demo.runner import demo_frameworks

    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="ailink", description="AIlink agent toolkit", epilog=ENVIRONMENT_HELP,
                                     formatter_class=formatter)
    parser.add_argument("--version", action="version", version=f"ailink {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="run the local gateway emulator and its inbox (ailink dev --help)", add_help=False)

    def command(parent: Any, name: str, help_text: str, *, json_flag: bool = True) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help_text, description=help_text,
                                                       epilog=ENVIRONMENT_HELP, formatter_class=formatter)
        p.add_argument("--gateway-url", default=os.environ.get("AILINK_GATEWAY_URL") or DEFAULT_GATEWAY_URL,
                       help=f"the gateway (default: $AILINK_GATEWAY_URL, else {DEFAULT_GATEWAY_URL})")
        p.add_argument("--admin-key", default=None, help=argparse.SUPPRESS)
        if json_flag:
            p.add_argument("--json", action="store_true", help="print JSON (the management API's objects)")
        return p

    approvals = sub.add_parser("approvals", help="review approvals: list, show, approve, reject, watch",
                               epilog=ENVIRONMENT_HELP, formatter_class=formatter)
    approvals_sub = approvals.add_subparsers(dest="action", required=True)
    listing = command(approvals_sub, "list", "list approvals (whole ids, whatever the terminal width)")
    listing.add_argument("--status", default="pending", choices=STATUSES,
                         help="pending (default), one status, decided (all but pending) or all")
    listing.add_argument("--limit", type=int, default=200, help="at most this many (newest first)")
    show = command(approvals_sub, "show", "everything about one approval: request, body, policy, agent, expiry")
    show.add_argument("id")
    for action in ("approve", "reject"):
        p = command(approvals_sub, action, f"{action} a pending approval (recorded with your name and channel cli)")
        p.add_argument("id")
        p.add_argument("--reason", default=None, help="why (kept in the audit log and sent with webhooks)")
        p.add_argument("--reviewer", default=None, help="your name (default: $AILINK_REVIEWER or your login name)")
    watch = command(approvals_sub, "watch", "pending approvals, live; decide with single keys (a, r) in a terminal")
    watch.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (default 1)")
    watch.add_argument("--reviewer", default=None, help="your name (default: $AILINK_REVIEWER or your login name)")
    watch.add_argument("--max-events", type=int, default=None,
                       help="with --json: stop after this many lines (e.g. 1: wait for the next approval)")

    sessions = sub.add_parser("sessions", help="inspect sessions: list, show", epilog=ENVIRONMENT_HELP,
                              formatter_class=formatter)
    sessions_sub = sessions.add_subparsers(dest="action", required=True)
    s_list = command(sessions_sub, "list", "sessions, most recently active first")
    s_list.add_argument("--limit", type=int, default=100)
    s_show = command(sessions_sub, "show", "a session's calls as a tree by span, with who decided each approval")
    s_show.add_argument("id")

    audit = sub.add_parser("audit", help="the audit log: list (with filters), show", epilog=ENVIRONMENT_HELP,
                           formatter_class=formatter)
    audit_sub = audit.add_subparsers(dest="action", required=True)
    a_list = command(audit_sub, "list", "audit rows, newest first, with each approval's decision")
    a_list.add_argument("--session", default=None, help="only this session")
    a_list.add_argument("--agent", default=None, help="only this agent")
    a_list.add_argument("--status", default=None, help="an HTTP status (403) or a result (denied, approved, ...)")
    a_list.add_argument("--limit", type=int, default=50)
    a_list.add_argument("--offset", type=int, default=0)
    a_show = command(audit_sub, "show", "one audit row (JSON)")
    a_show.add_argument("id")

    demo = sub.add_parser("demo", help="run the end-to-end demo on an in-process emulator")
    demo.add_argument("--framework", default="langchain", choices=demo_frameworks())
    demo.add_argument(
        "--auto-approve", action="store_true", help="approve automatically (also without a TTY or with CI=true)"
    )
    demo.add_argument("--approval-delay", type=float, default=1.5, help="seconds before an automatic approval")
    return parser


COMMANDS = {"approvals": _cmd_approvals, "sessions": _cmd_sessions, "audit": _cmd_audit}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ailink`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["dev"]:
        return _cmd_dev(argv[1:])
    args = build_parser().parse_args(argv)
    handler = COMMANDS.get(args.command)
    if handler is not None:
        import httpx

        try:
            return handler(args)
        except (ValueError, httpx.InvalidURL) as exc:  # a malformed --gateway-url or setting
            _print_error(_console(stderr=True), exc)
            return 2
    return _cmd_demo(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
