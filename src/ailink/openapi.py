"""Typed tools from an OpenAPI document: one tool per operation, with approvals known in advance.

Needs the ``openapi`` extra (``pip install 'ailink-sdk[openapi]'``). Most users call their
framework's one-liner (``langchain_tools``, ``crewai_tools``, ``llamaindex_tools``, ...), which
take :class:`ailink.adapters.OpenAPIToolsOptions`; this module is for looking at a conversion::

    from ailink.openapi import convert

    conversion = convert("openapi.yaml", policies=policies)
    for action in conversion.actions:
        print(action.name, action.gating.approval, action.description)
    print(conversion.skipped, conversion.errors)

Each tool's name comes from the ``operationId``; its arguments are the operation's path and
query parameters plus ``body`` (the JSON request body), validated against the operation's JSON
Schema before anything is sent. ``policies`` (or :func:`policies_for_token`) say which operations
a policy may deny or hold for a human: their descriptions and metadata say so, and operations that
are always denied are left out.
"""

from ailink._openapi.action import OperationAction, SchemaArguments
from ailink._openapi.document import OpenAPIError
from ailink._openapi.gates import Gating, PolicyGate
from ailink._openapi.operations import Argument, Operation
from ailink._openapi.toolset import (
    ConversionError,
    Filters,
    OpenAPIConversion,
    OpenAPIConversionWarning,
    SkippedOperation,
    convert,
    policies_for_token,
)
from ailink._tools.options import OpenAPIToolsOptions, gateway_tools

__all__ = [
    "Argument",
    "ConversionError",
    "Filters",
    "Gating",
    "OpenAPIConversion",
    "OpenAPIConversionWarning",
    "OpenAPIError",
    "OpenAPIToolsOptions",
    "Operation",
    "OperationAction",
    "PolicyGate",
    "SchemaArguments",
    "SkippedOperation",
    "convert",
    "gateway_tools",
    "policies_for_token",
]
