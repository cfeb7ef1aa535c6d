"""Reading an OpenAPI 3.0/3.1 document (a mapping, a file or a URL) and following its ``$ref``s.

References are resolved with ``referencing`` (the JSON Schema project's resolver): ``#/...``
pointers within the document and, for a document read from a file, relative references to other
files in the same folder (or below it). A document fetched from a URL may only refer to itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from referencing import Registry, Resource, Specification
from referencing.exceptions import Unresolvable

from ailink._secrets import scrub

if TYPE_CHECKING:
    from referencing._core import Resolver

    from ailink._client import AIlinkClient, AsyncClient

#: Largest document (or referenced file) read, in bytes.
MAX_DOCUMENT_BYTES = 32 * 1024 * 1024
#: Longest chain of references to references followed.
MAX_REFERENCE_CHAIN = 32
_INLINE_URI = "urn:ailink:openapi"


class OpenAPIError(ValueError):
    """An OpenAPI document that cannot be read, or (``strict=True``) an operation that cannot be converted."""


class UnresolvableReference(ValueError):
    """A ``$ref`` that cannot be followed (its message names the reference)."""


def _yaml_load(text: str) -> Any:
    try:
        import yaml
    except ImportError:  # pragma: no cover - pyyaml is part of the openapi extra
        raise OpenAPIError("reading a YAML document needs PyYAML: pip install 'ailink-sdk[openapi]'") from None
    return yaml.load(text, Loader=_loader())  # a SafeLoader subclass


_LOADER: Any = None


def _loader() -> Any:
    """A YAML 1.2-like safe loader: ``on``/``yes``/``no`` stay strings, timestamps stay strings."""
    global _LOADER
    if _LOADER is None:
        import re

        import yaml

        base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when installed

        class Loader(base):  # type: ignore[misc,valid-type]
            pass

        resolvers: dict[Any, list[Any]] = {}
        for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items():
            kept = [(tag, rx) for tag, rx in entries if tag not in ("tag:yaml.org,2002:timestamp",
                                                                    "tag:yaml.org,2002:bool")]
            resolvers[first] = kept
        Loader.yaml_implicit_resolvers = resolvers
        Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                     list("tTfF"))
        _LOADER = Loader
    return _LOADER


def parse_text(text: str, where: str) -> Any:
    """A JSON or YAML text as data; :class:`OpenAPIError` naming ``where`` when it is neither."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise OpenAPIError(f"{where} is not valid JSON: {exc}") from None
    try:
        return _yaml_load(text)
    except OpenAPIError:
        raise
    except Exception as exc:  # yaml.YAMLError and the recursion a hostile document can cause
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OpenAPIError(f"{where} is neither JSON nor YAML: {problem}") from None


def _decode(data: bytes, where: str) -> str:
    if len(data) > MAX_DOCUMENT_BYTES:
        raise OpenAPIError(f"{where} is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise OpenAPIError(f"{where} is not UTF-8 text") from None


def _read_file(path: Path) -> Any:
    where = f"the file {path}"
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise OpenAPIError(f"cannot read {where}: {exc.strerror or exc}") from None
    return parse_text(_decode(data, where), where)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _fetch(url: str, client: AIlinkClient | AsyncClient | None) -> Any:
    """The document at ``url``: through the gateway with the token when the URL is the gateway's,
    else a plain GET without any credential."""
    import httpx

    shown = scrub(url)
    if client is not None and _origin(url) == _origin(client.settings.gateway_url):
        from ailink._client import AIlinkClient
        from ailink._errors import AIlinkError

        sync = client if isinstance(client, AIlinkClient) else AIlinkClient.from_config(client.settings)
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            data = sync.get(path).content
        except AIlinkError as exc:
            raise OpenAPIError(f"the gateway did not serve the document at {shown}: {exc}") from None
        finally:
            if sync is not client:
                sync.close()
        return parse_text(_decode(data, shown), shown)
    try:
        response = httpx.get(url, timeout=30.0, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise OpenAPIError(f"cannot fetch {shown}: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise OpenAPIError(f"fetching {shown} answered HTTP {response.status_code}")
    return parse_text(_decode(response.content, shown), shown)


def _contained(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Document:
    """A parsed OpenAPI document and the resolver of its references."""

    contents: Mapping[str, Any]
    version: str
    base_uri: str
    resolver: Resolver[Any]

    @property
    def is_31(self) -> bool:
        """True for OpenAPI 3.1 (JSON Schema 2020-12 schemas), False for 3.0 (its own schema dialect)."""
        return self.version.startswith("3.1")

    def follow(self, node: Any, resolver: Resolver[Any]) -> tuple[Any, Resolver[Any], str | None]:
        """``node``, or what its ``$ref`` (chain) points to: (contents, the resolver of where it
        lives, the last reference followed). Raises :class:`UnresolvableReference`."""
        last: str | None = None
        for _ in range(MAX_REFERENCE_CHAIN):
            if not (isinstance(node, Mapping) and isinstance(node.get("$ref"), str)):
                return node, resolver, last
            last = node["$ref"]
            try:
                resolved = resolver.lookup(last)
            except Unresolvable as exc:
                cause: BaseException | None = exc
                for _ in range(4):  # Unresolvable ← Unretrievable ← the retriever's OpenAPIError
                    if cause is None or isinstance(cause, OpenAPIError):
                        break
                    cause = cause.__cause__ or cause.__context__
                why = f": {cause}" if isinstance(cause, OpenAPIError) else ""
                raise UnresolvableReference(f"cannot resolve $ref '{_short(last)}'{why}") from None
            node, resolver = resolved.contents, resolved.resolver
        raise UnresolvableReference(
            f"$ref '{_short(last or '')}' starts a chain of more than {MAX_REFERENCE_CHAIN} references")


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _registry(base_uri: str, contents: Any, folder: Path | None) -> Registry[Any]:
    def retrieve(uri: str) -> Resource[Any]:
        parts = urlsplit(uri)
        if folder is None or parts.scheme != "file":
            raise OpenAPIError("only references within the document (or, for a file, to files beside it) are followed")
        path = Path(unquote(parts.path)).resolve()
        if not _contained(path, folder):
            raise OpenAPIError("a referenced file must be in the document's folder or below it")
        return Specification.OPAQUE.create_resource(_read_file(path))

    registry: Registry[Any] = Registry(retrieve=retrieve)  # type: ignore[call-arg]
    with_document: Registry[Any] = registry.with_resource(base_uri, Specification.OPAQUE.create_resource(contents))
    return with_document


def load_document(
    source: Mapping[str, Any] | str | os.PathLike[str], client: AIlinkClient | AsyncClient | None = None
) -> Document:
    """Read an OpenAPI 3.0/3.1 document from a mapping, a file path or an ``http(s)`` URL."""
    folder: Path | None = None
    if isinstance(source, Mapping):
        contents: Any = source
        base_uri = _INLINE_URI
    elif isinstance(source, str) and source.startswith(("http://", "https://")):
        contents = _fetch(source, client)
        base_uri = source.split("#", 1)[0]
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source).resolve()
        contents = _read_file(path)
        base_uri = path.as_uri()
        folder = path.parent
    else:
        raise OpenAPIError(f"openapi= must be a dict, a file path or an http(s) URL, not {type(source).__name__}")
    if not isinstance(contents, Mapping):
        raise OpenAPIError("an OpenAPI document must be an object (a mapping) at its top level")
    version = contents.get("openapi")
    if not isinstance(version, str) or not version.startswith(("3.0", "3.1")):
        found = f"'openapi: {_short(str(version), 40)}'" if version is not None else "no 'openapi' version field"
        swagger = " (Swagger 2.0 documents are not supported: convert them to OpenAPI 3 first)" \
            if "swagger" in contents else ""
        raise OpenAPIError(f"expected an OpenAPI 3.0 or 3.1 document, found {found}{swagger}")
    if not isinstance(contents.get("paths", {}), Mapping):
        raise OpenAPIError("the document's 'paths' must be an object")
    registry = _registry(base_uri, contents, folder)
    return Document(contents=contents, version=version, base_uri=base_uri, resolver=registry.resolver(base_uri))


def validate_document(document: Document) -> None:
    """Check the whole document against the OpenAPI specification (``openapi-spec-validator``);
    raises :class:`OpenAPIError` listing the first problems."""
    try:
        from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator
    except ImportError:  # pragma: no cover - part of the openapi extra
        raise OpenAPIError("validate=True needs openapi-spec-validator: pip install 'ailink-sdk[openapi]'") from None
    validator_class: Any = OpenAPIV31SpecValidator if document.is_31 else OpenAPIV30SpecValidator
    uri = document.base_uri
    problems = []
    for error in validator_class(document.contents, base_uri=uri if uri != _INLINE_URI else "").iter_errors():
        where = "/".join(str(p) for p in getattr(error, "absolute_path", ()) or ())
        message = str(getattr(error, "message", error)).splitlines()[0]
        problems.append(f"{where or '(document)'}: {_short(message)}")
        if len(problems) >= 10:
            break
    if problems:
        raise OpenAPIError("the document is not valid OpenAPI: " + "; ".join(problems))
