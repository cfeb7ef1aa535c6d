"""Typed tools from an OpenAPI 3.0/3.1 document: one tool action per operation (issue 20).

``document``: reading the document and following its references (``referencing``); ``schema``:
OpenAPI schemas as self-contained JSON Schema; ``operations``: each operation's tool name,
arguments and argument schema; ``paths``: filling in path templates, comparing them with policy
patterns; ``gates``: which policies may deny an operation or hold it for a human, known in
advance; ``action``: :class:`OperationAction`, the typed tool action; ``toolset``: ``convert``
and what ``ailink.adapters.gateway_tools`` builds. Needs the ``openapi`` extra; ``import ailink``
never imports this package.
"""
