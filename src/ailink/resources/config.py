"""Configuration as code: export policies and tokens as YAML or JSON, import them back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from ailink.resources._base import AsyncResource, Call, SyncResource, as_dict, async_method, body, sync_method

__all__ = ["AsyncConfigResource", "ConfigResource"]

ConfigFormat = Literal["yaml", "json"]


def _text(data: Any) -> str:
    return str(data)


def _exported(path: str, format: str, project_id: str | None) -> Call[str | dict[str, Any]]:
    if format not in ("yaml", "json"):
        raise ValueError("format must be 'yaml' or 'json'")
    params = body(format=format, project_id=project_id)
    if format == "json":
        return Call("GET", path, as_dict, params=params)
    return Call("GET", path, _text, params=params, text=True)


def _export(format: ConfigFormat = "yaml", project_id: str | None = None) -> Call[str | dict[str, Any]]:
    """Policies and tokens: a YAML string (``format="yaml"``) or a dict (``format="json"``)."""
    return _exported("/api/v1/config/export", format, project_id)


def _export_policies(format: ConfigFormat = "yaml", project_id: str | None = None) -> Call[str | dict[str, Any]]:
    """Policies only (YAML string or dict)."""
    return _exported("/api/v1/config/export/policies", format, project_id)


def _export_tokens(format: ConfigFormat = "yaml", project_id: str | None = None) -> Call[str | dict[str, Any]]:
    """Tokens only, without credentials (YAML string or dict)."""
    return _exported("/api/v1/config/export/tokens", format, project_id)


def _import_config(config: str | dict[str, Any], project_id: str | None = None) -> Call[dict[str, Any]]:
    """Upsert policies and tokens (matched by name) from YAML/JSON text or a dict; returns the counts."""
    if isinstance(config, dict):
        content, content_type = json.dumps(config).encode(), "application/json"
    else:
        content, content_type = config.encode("utf-8"), "application/yaml"
    return Call("POST", "/api/v1/config/import", as_dict, params=body(project_id=project_id), content=content,
                headers={"Content-Type": content_type})


def _file_format(path: Path, format: ConfigFormat | None) -> ConfigFormat:
    return format or ("json" if path.suffix.lower() == ".json" else "yaml")


def _write(path: Path, exported: str | dict[str, Any]) -> Path:
    path.write_text(exported if isinstance(exported, str) else json.dumps(exported, indent=2), encoding="utf-8")
    return path


class ConfigResource(SyncResource):
    """``client.config``: export and import the gateway configuration."""

    export = sync_method(_export)
    export_policies = sync_method(_export_policies)
    export_tokens = sync_method(_export_tokens)
    import_config = sync_method(_import_config)
    import_yaml = import_config

    def export_to_file(
        self, path: str | Path, format: ConfigFormat | None = None, project_id: str | None = None
    ) -> Path:
        """Export to ``path`` (JSON for ``.json``, YAML otherwise, unless ``format`` says); returns the path."""
        path = Path(path)
        return _write(path, self._client._execute(_export(_file_format(path, format), project_id)))

    def import_from_file(self, path: str | Path, project_id: str | None = None) -> dict[str, Any]:
        """Import a YAML or JSON file."""
        return self._client._execute(_import_config(Path(path).read_text(encoding="utf-8"), project_id))


class AsyncConfigResource(AsyncResource):
    """``client.config`` of an :class:`~ailink.AsyncClient`."""

    export = async_method(_export)
    export_policies = async_method(_export_policies)
    export_tokens = async_method(_export_tokens)
    import_config = async_method(_import_config)
    import_yaml = import_config

    async def export_to_file(
        self, path: str | Path, format: ConfigFormat | None = None, project_id: str | None = None
    ) -> Path:
        """Export to ``path`` (JSON for ``.json``, YAML otherwise, unless ``format`` says); returns the path."""
        path = Path(path)
        return _write(path, await self._client._aexecute(_export(_file_format(path, format), project_id)))

    async def import_from_file(self, path: str | Path, project_id: str | None = None) -> dict[str, Any]:
        """Import a YAML or JSON file."""
        return await self._client._aexecute(_import_config(Path(path).read_text(encoding="utf-8"), project_id))
