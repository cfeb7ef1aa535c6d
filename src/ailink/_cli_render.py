"""What the ``ailink`` command prints: tables that never cut an id, approvals in full, JSON.

Tables go to a terminal as rich tables; when the terminal is too narrow the least important
columns are dropped (never the id), and the id column never wraps or shortens. Anywhere else (a
pipe, a file) they are plain aligned text with every value whole. Agent-controlled text passes
:func:`ailink._display.shown` (secrets masked, control characters visible) and is printed as text,
never as markup.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ailink._display import shown, until

#: Rich's table: one space of padding each side of a cell plus one border column per column.
_CELL_OVERHEAD = 3


@dataclass(frozen=True)
class Column:
    """A table column; ``drop`` orders which go first when the terminal is narrow (0: never)."""

    title: str
    drop: int = 0
    is_id: bool = False


def print_json(console: Any, data: Any) -> None:
    """``data`` as indented JSON (plain text: never read as markup, never highlighted)."""
    console.print(json.dumps(data, indent=2, ensure_ascii=False, default=str), markup=False, highlight=False,
                  soft_wrap=True)


def _fits(columns: Sequence[Column], rows: Sequence[Sequence[str]], keep: set[int], width: int) -> bool:
    need = 1
    for i in keep:
        need += max([len(columns[i].title), *(len(r[i]) for r in rows)]) + _CELL_OVERHEAD
    return need <= width


def print_table(console: Any, title: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> None:
    """A table whose id column is always whole (see the module docstring)."""
    cells = [[shown(v) for v in row] for row in rows]
    if not console.is_terminal:
        widths = [max([len(c.title), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
        lines = ["  ".join(c.title.upper().ljust(widths[i]) for i, c in enumerate(columns)).rstrip()]
        lines += ["  ".join(r[i].ljust(widths[i]) for i in range(len(columns))).rstrip() for r in cells]
        console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)
        return
    from rich.table import Table
    from rich.text import Text

    keep = set(range(len(columns)))
    for i in sorted((i for i, c in enumerate(columns) if c.drop), key=lambda i: -columns[i].drop):
        if _fits(columns, cells, keep, console.width):
            break
        keep.discard(i)
    kept = [i for i in range(len(columns)) if i in keep]
    table = Table(title=title, title_justify="left")
    for i in kept:
        column = columns[i]
        if column.is_id:
            widest = max([len(column.title), *(len(r[i]) for r in cells)])
            table.add_column(column.title, no_wrap=True, min_width=widest, overflow="fold")
        else:
            table.add_column(column.title, overflow="fold")
    for row in cells:
        table.add_row(*(Text(row[i]) for i in kept))
    console.print(table)
    dropped = [columns[i].title for i in range(len(columns)) if i not in keep]
    if dropped:
        console.print(f"(narrow terminal: {', '.join(dropped)} not shown; --json has everything)", style="dim",
                      markup=False, highlight=False)


def approval_rows(items: Sequence[Any]) -> tuple[list[Column], list[list[str]]]:
    """The columns and rows of ``ailink approvals list``."""
    columns = [Column("id", is_id=True), Column("status"), Column("request", drop=2), Column("policy", drop=4),
               Column("agent", drop=3), Column("when", drop=1), Column("decided by", drop=5)]
    rows = []
    for item in items:
        if item.status == "pending":
            when = f"expires {until(item.expires_at)}".strip()
        else:
            when = item.decided_at or item.reviewed_at or ""
        who = f"{item.reviewed_by or ''} ({item.review_channel})" if item.review_channel else (item.reviewed_by or "")
        rows.append([item.id, item.status, item.summary_text, item.policy or "", item.request_summary.agent or "",
                     when, who.strip()])
    return columns, rows


def print_approval(console: Any, item: Any) -> None:
    """Everything a reviewer needs about one approval (``ailink approvals show``)."""
    from rich.text import Text

    request = item.request or {}
    summary = item.request_summary
    facts: list[tuple[str, Any]] = [
        ("approval", item.id), ("status", item.status), ("policy", item.policy),
        ("request", f"{request.get('method') or summary.method or ''} {request.get('path') or summary.path or ''}"),
        ("upstream", request.get("upstream") or summary.upstream), ("agent", summary.agent),
        ("tool", summary.tool_name), ("session", summary.session_id), ("token", item.token_id),
        ("idempotency key", item.idempotency_key), ("requested", item.created_at),
    ]
    if item.status == "pending":
        facts.append(("expires", f"{item.expires_at} ({until(item.expires_at)})"))
    else:
        who = item.reviewed_by or "—"
        facts += [("decided", item.decided_at or item.reviewed_at), ("decided by", f"{who} via {item.review_channel}"
                                                                      if item.review_channel else who),
                  ("reason", item.reason)]
        if item.get("result_status"):
            facts.append(("upstream answer", f"HTTP {item.get('result_status')}"))
    if item.review_url:
        facts.append(("inbox", item.review_url))
    width = max(len(label) for label, _ in facts)
    for label, value in facts:
        if value not in (None, ""):
            console.print(Text(f"{label.rjust(width)}  ", style="dim") + Text(shown(value)))
    params = request.get("query_params") or []
    if params:
        console.print(Text("\nquery", style="bold"))
        for key, value in params:
            console.print(Text(f"  {shown(key)} = {shown(value)}"))
    headers = request.get("headers") or {}
    if headers:
        console.print(Text("\nheaders", style="bold"))
        for key, value in headers.items():
            console.print(Text(f"  {shown(key)}: {shown(value)}"))
    console.print(Text("\nbody", style="bold"))
    if request.get("body_is_json"):
        text = json.dumps(request.get("body_json"), indent=2, ensure_ascii=False)
    else:
        text = request.get("body") or summary.body_preview or "(none)"
    console.print(Text(shown(text, keep_newlines=True)), soft_wrap=True)
    if item.status == "pending":
        console.print(Text(f"\nDecide: ailink approvals approve {item.id} --reason '...'  |  "
                           f"ailink approvals reject {item.id} --reason '...'", style="dim"))


def session_rows(items: Sequence[Any]) -> tuple[list[Column], list[list[str]]]:
    columns = [Column("session", is_id=True), Column("status"), Column("requests"), Column("first request", drop=2),
               Column("last request", drop=1)]
    return columns, [[s.session_id, s.status or "", str(s.total_requests or 0), s.first_request_at or "",
                      s.last_request_at or ""] for s in items]


def audit_rows(items: Sequence[Any]) -> tuple[list[Column], list[list[str]]]:
    columns = [Column("time", drop=3), Column("request"), Column("status"), Column("result", drop=2),
               Column("agent", drop=4), Column("session", drop=5), Column("approval", is_id=True),
               Column("decision", drop=1)]
    rows = []
    for r in items:
        decision = r.get("hitl_decision") or ""
        if decision and r.get("reviewed_by"):
            decision += f" by {r.get('reviewed_by')}"
        if decision and r.get("review_channel"):
            decision += f" via {r.get('review_channel')}"
        if r.get("review_reason"):
            decision += f": {r.get('review_reason')}"
        elif r.get("deny_reason"):
            decision = decision or str(r.get("deny_reason"))
        rows.append([r.created_at or "", f"{r.method or ''} {r.path or ''}", str(r.status_code or ""),
                     r.policy_result or "", r.agent_name or "", r.session_id or "", r.approval_id or "", decision])
    return columns, rows


__all__ = ["Column", "approval_rows", "audit_rows", "print_approval", "print_json", "print_table", "session_rows"]
