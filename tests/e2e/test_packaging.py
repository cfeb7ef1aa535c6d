"""Every distribution as PyPI gets them: built (wheel + sdist), checked by ``twine check --strict``.

Built once per run with ``python -m build --no-isolation`` (hatchling from the dev tools, no
network) into a temporary directory. Each artifact carries a long description (its README, every
link absolute), the license file and expression, classifiers (``Typing :: Typed`` included),
project URLs and one version; an sdist carries what builds its wheel, not the repository.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest
from distributions import ROOT, distributions
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib



def _package(path: Path) -> str:
    """The directory the wheel is built from (``[tool.hatch.build.targets.wheel] packages``)."""
    packages: list[str] = tomllib.loads((path / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"][
        "wheel"]["packages"]
    return packages[0]


#: ``name -> (directory, package directory)`` of every distribution.
DISTRIBUTIONS = {name: (path, _package(path)) for name, path in distributions().items()}
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
#: What an sdist may hold besides its package: the files that build and describe it.
SDIST_EXTRAS = {"pyproject.toml", "README.md", "LICENSE", "PKG-INFO", ".gitignore", "CHANGELOG.md"}
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _project(name: str) -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((DISTRIBUTIONS[name][0] / "pyproject.toml").read_text())["project"]
    return project


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """``name -> (wheel, sdist)``."""
    out = tmp_path_factory.mktemp("dist")
    artifacts: dict[str, tuple[Path, Path]] = {}
    for name, (path, _) in DISTRIBUTIONS.items():
        result = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(path)],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        stem = name.replace("-", "_")
        (wheel,) = out.glob(f"{stem}-*.whl")
        (sdist,) = out.glob(f"{stem}-*.tar.gz")
        artifacts[name] = (wheel, sdist)
    return artifacts


def _wheel_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return Parser().parsestr(archive.read(name).decode())


def test_twine_check_strict_passes_for_every_artifact(built: dict[str, tuple[Path, Path]]) -> None:
    files = [str(f) for pair in built.values() for f in pair]
    result = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *files],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2 * len(DISTRIBUTIONS)


@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
def test_wheel_metadata_is_complete(name: str, built: dict[str, tuple[Path, Path]]) -> None:
    wheel, _ = built[name]
    meta = _wheel_metadata(wheel)
    project = _project(name)
    assert meta["Name"] == name and meta["Version"] == project["version"]
    assert meta["License-Expression"] == "Apache-2.0" and meta["License-File"] == "LICENSE"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().strip() == (DISTRIBUTIONS[name][0] / "README.md").read_text().strip()
    classifiers = meta.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers
    requires_python = SpecifierSet(meta["Requires-Python"])
    versions = re.compile(r"Programming Language :: Python :: (3\.\d+)")
    listed = {m[1] for m in map(versions.fullmatch, classifiers) if m}
    assert listed == set(PYTHONS) and all(requires_python.contains(f"{v}.0") for v in PYTHONS)
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert {"Homepage", "Repository", "Issues", "Changelog"} <= set(urls)
    assert all(url.startswith("https://") for url in urls.values())
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert any(n.endswith("py.typed") for n in names)  # typed, as the classifier says
    assert not any("tests/" in n or n.endswith((".pyc", ".ipynb")) for n in names)


@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
def test_sdist_holds_what_builds_the_wheel_and_nothing_else(name: str, built: dict[str, tuple[Path, Path]]) -> None:
    _, sdist = built[name]
    package = DISTRIBUTIONS[name][1]
    with tarfile.open(sdist) as archive:
        members = [m.name.split("/", 1)[1] for m in archive.getmembers() if m.isfile()]
    others = {m for m in members if not m.startswith(package + "/")}
    assert others <= SDIST_EXTRAS, others
    assert {"pyproject.toml", "README.md", "LICENSE", "PKG-INFO"} <= others
    assert not any("__pycache__" in m for m in members)


def test_one_version_and_bounded_core_requirements() -> None:
    version = _project("ailink-sdk")["version"]
    assert isinstance(version, str)
    major, minor, _ = (int(part) for part in version.split("."))
    for name in DISTRIBUTIONS:
        project = _project(name)
        assert project["version"] == version, name  # released together
        if name == "ailink-sdk":
            continue
        dependencies = project["dependencies"]
        assert isinstance(dependencies, list)
        (core,) = [Requirement(r) for r in dependencies if Requirement(r).name == "ailink-sdk"]
        assert core.specifier.contains(version) and not core.specifier.contains(f"{major}.{minor + 1}.0"), core
        for requirement in map(Requirement, dependencies):  # a lower bound (tested), or only a cap
            operators = {s.operator for s in requirement.specifier}
            assert operators & {">=", "~=", "=="} or operators == {"<"}, requirement
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{version}]" in changelog


def test_one_license_text_for_every_distribution() -> None:
    texts = {(path / "LICENSE").read_text() for path, _ in DISTRIBUTIONS.values()}
    assert len(texts) == 1 and "Apache License" in texts.pop()


@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
def test_readme_links_work_on_pypi(name: str) -> None:
    """PyPI shows the README without the repository around it: every link and image is absolute."""
    readme = (DISTRIBUTIONS[name][0] / "README.md").read_text()
    repository = dict(_project(name)["urls"])["Repository"]  # type: ignore[call-overload]
    targets = MARKDOWN_LINK.findall(readme)
    assert targets, "a README links to the project"
    for target in targets:
        assert target.startswith("https://"), target
    raw = repository.replace("github.com", "raw.githubusercontent.com")
    for target in targets:  # links into this repository all name the same one
        if "github" in target and "/ailink" in target:
            assert target.startswith((repository, raw)), target
    assert "make demo" not in readme.split("## Working on this repository")[0]  # a clone's workflow comes last


def test_the_cli_and_import_ailink_need_only_the_base_install() -> None:
    """``rich`` is a dependency (the CLI), yet ``import ailink`` loads neither it nor OpenTelemetry."""
    dependencies = [Requirement(r).name for r in _project("ailink-sdk")["dependencies"]]  # type: ignore[union-attr]
    assert "rich" in dependencies
    code = "import sys, ailink; print(sorted(m for m in ('rich', 'opentelemetry') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
