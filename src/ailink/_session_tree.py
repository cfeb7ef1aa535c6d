"""Rebuild an agent run's step tree from a session's requests (pure), and render it (CLI, demo, notebooks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ailink._models import Session, SessionRequest
from ailink._tracing import SPAN_PATH_PROPERTY


@dataclass
class SpanNode:
    """One span of the run: its label, child spans and the HTTP requests made directly under it."""

    span_id: str
    label: str
    children: list[SpanNode] = field(default_factory=list)
    requests: list[SessionRequest] = field(default_factory=list)

    def walk(self) -> list[SpanNode]:
        nodes = [self]
        for child in self.children:
            nodes.extend(child.walk())
        return nodes


def _span_path(request: SessionRequest) -> list[tuple[str, str]]:
    props: dict[str, Any] = request.properties or {}
    raw = props.get(SPAN_PATH_PROPERTY)
    path: list[tuple[str, str]] = []
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, (list, tuple)) and len(item) == 2:
                path.append((str(item[0]), str(item[1])))
    if request.parent_span_id and (not path or path[-1][0] != request.parent_span_id):
        if request.tool_name:
            label = f"tool:{request.tool_name}"
        elif props.get("llm") or (request.path or "").endswith(("/chat/completions", "/embeddings")):
            label = f"llm:{props.get('llm') or 'model'}"
        else:
            label = str(props.get("task") or props.get("step") or "span")
        path.append((request.parent_span_id, label))
    return path


def build_span_tree(session: Session) -> SpanNode:
    """The session as a tree: spans from each request's ``span_path`` / ``parent_span_id``."""
    root = SpanNode(span_id="", label=f"session {session.session_id}")
    nodes: dict[str, SpanNode] = {}
    ordered = sorted(session.requests, key=lambda r: (r.created_at or "", r.id))
    for request in ordered:
        parent = root
        for span_id, label in _span_path(request):
            node = nodes.get(span_id)
            if node is None:
                node = SpanNode(span_id=span_id, label=label)
                nodes[span_id] = node
                parent.children.append(node)
            elif label.startswith(node.label) and len(label) > len(node.label):
                node.label = label  # a later request knew more about this span
            parent = node
        parent.requests.append(request)
    return root


def describe_request(request: SessionRequest) -> str:
    """One line for a request: method, path, status, policy outcome, approval wait, who decided and why, latency."""
    parts = [f"{request.method or '?'} {request.path or '?'}", f"→ {request.status_code}"]
    if request.policy_result:
        parts.append(f"policy: {request.policy_result}")
    if request.approval_id:
        waited = f", waited {request.approval_wait_ms / 1000:.1f} s" if request.approval_wait_ms else ""
        parts.append(f"approval {request.approval_id}{waited}")
    if request.hitl_decision:
        who = f" by {request.reviewed_by}" if request.reviewed_by else ""
        via = f" via {request.review_channel}" if request.review_channel else ""
        why = f': "{request.review_reason}"' if request.review_reason else ""
        parts.append(f"{request.hitl_decision}{who}{via}{why}")
    if request.route_strategy:
        why = f": {request.route_reason}" if request.route_reason else ""
        parts.append(f"via {_host(request.upstream_url)} ({request.route_strategy}{why})")
    if request.latency_ms is not None:
        parts.append(f"{request.latency_ms:.0f} ms")
    return " · ".join(parts)


def _host(url: str | None) -> str:
    """``scheme://host:port`` of a target URL (its path is the request's, shown already)."""
    if not url:
        return "?"
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}" if rest else url


def render_session(session: Session) -> Any:
    """A rich ``Tree`` of the session's spans and requests (needs ``rich``); agent-controlled text
    is printed as text, never as markup."""
    from rich.text import Text
    from rich.tree import Tree

    from ailink._display import shown

    def add(branch: Any, node: SpanNode) -> None:
        for request in node.requests:
            style = "green" if (request.status_code or 0) < 400 else "red"
            branch.add(Text(shown(describe_request(request)), style=style))
        for child in node.children:
            label = Text(shown(child.label), style="bold") + Text(f" {shown(child.span_id)}", style="dim")
            add(branch.add(label), child)

    root = build_span_tree(session)
    tree = Tree(Text(shown(root.label), style="bold cyan"))
    add(tree, root)
    return tree
