"""``ailink approvals watch``: the pending approvals, live, decided with single keys.

In a terminal: a table refreshed every ``--interval`` seconds; ``↑``/``↓`` (or ``k``/``j``) select,
``a`` approves and ``r`` rejects the selected approval (a reason is asked for), ``s`` shows it in
full, ``q`` quits. With ``--json`` (or without a terminal): one JSON line per approval that becomes
pending or leaves ``pending``, until interrupted or ``--max-events`` lines were printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from ailink._cli_render import Column, approval_rows, print_approval
from ailink._display import shown
from ailink._errors import AIlinkError

KeyReader = Callable[[float], "str | None"]
Ask = Callable[[str], str]
KEY_HELP = "↑/↓ select · a approve · r reject · s show · q quit"


def approval_json(item: Any) -> dict[str, Any]:
    return dict(item.model_dump(mode="json"))


def stream_json(admin: Any, out: Any, *, interval: float, max_events: int | None,
                sleep: Callable[[float], None] = time.sleep) -> int:
    """Print a JSON line per approval that appears in or leaves the pending list."""
    known: dict[str, Any] = {}
    printed = 0
    while max_events is None or printed < max_events:
        pending = {a.id: a for a in admin.approvals.list(status="pending")}
        lines = [{"event": "pending", "approval": approval_json(a)} for i, a in pending.items() if i not in known]
        for gone in [i for i in known if i not in pending]:
            try:
                final = admin.approvals.get(gone)
                lines.append({"event": final.status, "approval": approval_json(final)})
            except AIlinkError:
                lines.append({"event": "gone", "approval": approval_json(known[gone])})
        known = pending
        for line in lines:
            if max_events is not None and printed >= max_events:
                break
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            out.flush()
            printed += 1
        if max_events is None or printed < max_events:
            sleep(interval)
    return 0


class Watcher:
    """The interactive watch: state (the list, the selection) and what each key does."""

    def __init__(self, admin: Any, console: Any, *, reviewer: str | None, read_key: KeyReader, ask: Ask,
                 interval: float = 1.0) -> None:
        self.admin = admin
        self.console = console
        self.reviewer = reviewer
        self.read_key = read_key
        self.ask = ask
        self.interval = interval
        self.items: list[Any] = []
        self.selected = 0
        self.message = ""

    def refresh(self) -> None:
        self.items = list(reversed(self.admin.approvals.list(status="pending")))  # oldest first
        self.selected = min(self.selected, max(0, len(self.items) - 1))

    def render(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        columns, rows = approval_rows(self.items)
        keep = [i for i, c in enumerate(columns) if c.title in ("id", "request", "agent", "when")]
        table = Table(title=f"Pending approvals ({len(self.items)})", title_justify="left")
        table.add_column(" ", no_wrap=True, width=1)
        for i in keep:
            column: Column = columns[i]
            widest = max([len(column.title), *(len(r[i]) for r in rows)]) if column.is_id else None
            table.add_column(column.title, no_wrap=column.is_id, min_width=widest, overflow="fold")
        for n, row in enumerate(rows):
            marker = "›" if n == self.selected else " "
            table.add_row(marker, *(Text(shown(row[i])) for i in keep),
                          style="reverse" if n == self.selected else None)
        if not rows:
            table.add_row(" ", Text("No approvals are waiting.", style="dim"), *([""] * (len(keep) - 1)))
        parts: list[Any] = [table, Text(KEY_HELP, style="dim")]
        if self.message:
            parts.append(Text(shown(self.message)))
        return Group(*parts)

    def current(self) -> Any | None:
        return self.items[self.selected] if self.items else None

    def handle(self, key: str) -> bool:
        """Act on ``key``; False when the watch should end."""
        if key in ("q", "Q", "\x03", "\x04"):
            return False
        if key in ("down", "j"):
            self.selected = min(self.selected + 1, max(0, len(self.items) - 1))
        elif key in ("up", "k"):
            self.selected = max(0, self.selected - 1)
        elif key in ("a", "r", "s"):
            item = self.current()
            if item is None:
                return True
            if key == "s":
                print_approval(self.console, self.admin.approvals.get(item.id))
                self.ask("press Enter to go back ")
            else:
                self.decide(item, "approved" if key == "a" else "rejected")
        return True

    def decide(self, item: Any, decision: str) -> None:
        verb = "approve" if decision == "approved" else "reject"
        reason = self.ask(f"Reason to {verb} {item.id} ({item.summary_text}) — empty to skip, Ctrl-C to cancel: ")
        try:
            result = self.admin.approvals.decide(item.id, decision, reason.strip() or None,
                                                 reviewed_by=self.reviewer, channel="cli")
        except AIlinkError as exc:
            self.message = f"Could not {verb} {item.id}: {exc.message}"
            return
        self.message = (f"{item.id} {decision}." if result.updated
                        else f"{item.id} was not pending any more ({result.status}).")
        self.refresh()

    def run(self) -> int:
        from rich.live import Live

        self.refresh()
        with Live(self.render(), console=self.console, auto_refresh=False, transient=False) as live:
            next_refresh = time.monotonic() + self.interval
            while True:
                key = self.read_key(max(0.0, next_refresh - time.monotonic()))
                if key is not None:
                    if key in ("a", "r", "s"):
                        live.stop()
                        try:
                            alive = self.handle(key)
                        except KeyboardInterrupt:
                            self.message, alive = "Cancelled.", True
                        live.start()
                    else:
                        alive = self.handle(key)
                    if not alive:
                        return 0
                if time.monotonic() >= next_refresh:
                    self.refresh()
                    next_refresh = time.monotonic() + self.interval
                live.update(self.render(), refresh=True)


@contextlib.contextmanager
def terminal_keys() -> Iterator[tuple[KeyReader, Ask]]:
    """Single keys from the terminal (cbreak mode) and a normal line prompt for reasons."""
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)

    def read_key(timeout: float) -> str | None:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return None
        ch = os.read(fd, 1).decode(errors="replace")
        if ch == "\x1b":
            more, _, _ = select.select([fd], [], [], 0.05)
            if more:
                seq = os.read(fd, 2).decode(errors="replace")
                return {"[A": "up", "[B": "down"}.get(seq, "")
        return ch

    def ask(prompt: str) -> str:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        try:
            return input(prompt)
        finally:
            tty.setcbreak(fd)

    tty.setcbreak(fd)
    try:
        yield read_key, ask
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


__all__ = ["KEY_HELP", "Watcher", "stream_json", "terminal_keys"]
