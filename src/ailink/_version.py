"""The distribution's version, read once from its installed metadata."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("ailink-sdk")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0+unknown"

#: Sent as ``User-Agent`` by every httpx client this toolkit builds.
USER_AGENT = f"ailink-python/{__version__}"
