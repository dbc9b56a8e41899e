"""binder/ installs what pyproject.toml declares, and covers every notebook's imports."""

from __future__ import annotations

import ast
import json
import re
import shlex
import sys
from pathlib import Path

import pytest

from nbinfra.registry import BUILTINS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# import name -> distribution name, where they differ
DISTRIBUTION = {"yaml": "pyyaml", "IPython": "ipython", "sklearn": "scikit-learn"}
# imported through another distribution of the set
PROVIDED_BY = {"numpy": "pandas", "traitlets": "ipython"}
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9_.-]+)(\[([^\]]*)\])?")
_KIND_CALL = re.compile(r"nbinfra\.conn\(\s*['\"]([a-z0-9_]+)['\"]")
_KIND_MAGIC = re.compile(r"^%%?conn\s+([a-z0-9_]+)", re.MULTILINE)


def _pyproject() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _binder_extras() -> list[str]:
    script = (ROOT / "binder" / "postBuild").read_text()
    found = re.findall(r"-e\s+(\S+)", script)
    assert found, "binder/postBuild must pip install -e '.[extras]'"
    spec = shlex.split(found[0])[0]
    match = re.fullmatch(r"\.\[([a-z0-9_,-]+)\]", spec)
    assert match, f"binder/postBuild installs {spec!r}; expected .[extra,...]"
    return match.group(1).split(",")


def _closure(extras: list[str]) -> set[str]:
    """Every distribution the extras pull in (self-references to nbinfra[...] expanded)."""
    project = _pyproject()["project"]
    optional = project["optional-dependencies"]
    names = {_norm(_REQ_NAME.match(r).group(1)) for r in project["dependencies"]}  # type: ignore[union-attr]
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for req in optional[extra]:
            m = _REQ_NAME.match(req)
            assert m is not None, req
            if _norm(m.group(1)) == "nbinfra":
                todo.extend(e.strip() for e in (m.group(3) or "").split(","))
            else:
                names.add(_norm(m.group(1)))
    return names


def _code_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def _imports(source: str) -> set[str]:
    python = "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()
    )
    if source.lstrip().startswith("%%"):
        return set()  # the body of a cell magic is not Python
    tree = ast.parse(python)
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def _kinds(source: str) -> set[str]:
    return set(_KIND_CALL.findall(source)) | set(_KIND_MAGIC.findall(source))


def test_binder_extras_exist_in_pyproject() -> None:
    optional = _pyproject()["project"]["optional-dependencies"]
    missing = [e for e in _binder_extras() if e not in optional]
    assert not missing, f"binder/postBuild installs extras pyproject.toml lacks: {missing}"


def test_binder_requirements_are_in_pyproject() -> None:
    closure = _closure(list(_pyproject()["project"]["optional-dependencies"]))
    for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name = _norm(_REQ_NAME.match(line).group(1))  # type: ignore[union-attr]
            assert name in closure, f"binder/requirements.txt has {name}, no extra declares it"


def test_there_are_notebooks() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert names[:6] == [
        "01_quickstart.ipynb",
        "02_cache.ipynb",
        "03_connections.ipynb",
        "04_vector_search.ipynb",
        "05_llm_and_context.ipynb",
        "06_extending.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_imports_are_installed_by_binder(path: Path) -> None:
    closure = _closure(_binder_extras())
    stdlib = set(sys.stdlib_module_names)
    needed: set[str] = set()
    for source in _code_cells(path):
        for module in _imports(source) - stdlib - {"nbinfra"}:
            module = PROVIDED_BY.get(module, module)
            needed.add(_norm(DISTRIBUTION.get(module, module)))
        if "%load_ext nbinfra" in source or "nbinfra.widgets" in source:
            needed.update({"ipython", "ipywidgets"})
        if "results_table(" in source:
            needed.add("anywidget")
        if ".df()" in source:
            needed.add("pandas")
        for kind in _kinds(source):
            entry = BUILTINS["nbinfra.connections"].get(kind)
            if entry is not None and entry.extra:
                needed.update(_closure([entry.extra]))
    missing = sorted(needed - closure)
    assert not missing, f"{path.name} needs {missing}, which binder/postBuild does not install"


def test_checker_sees_a_missing_import(tmp_path: Path) -> None:
    # The check above would pass vacuously if _imports found nothing; make sure it finds.
    assert _imports("import pandas as pd\nfrom qdrant_client import models\n%load_ext x") == {
        "pandas",
        "qdrant_client",
    }
    assert _kinds("%%conn postgres\nSELECT 1") == {"postgres"}
    assert "jupysql" not in _closure(_binder_extras())
