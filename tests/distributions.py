"""The repository's distributions, as the packaging and README tests find them."""

from __future__ import annotations

from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def distributions() -> dict[str, Path]:
    """Every distribution of the repository: the core, then each ``integrations/<framework>/``."""
    found = {"ailink-sdk": ROOT}
    for pyproject in sorted(ROOT.glob("integrations/*/pyproject.toml")):
        found[tomllib.loads(pyproject.read_text())["project"]["name"]] = pyproject.parent
    return found
