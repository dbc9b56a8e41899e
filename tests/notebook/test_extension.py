"""%load_ext / %unload_ext, help text, config options."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from tests.notebook.conftest import TestingShell

ROOT = Path(__file__).resolve().parents[2]

_CHILD = """
import json, sys
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
before = set(sys.modules)
ip.run_line_magic("load_ext", "nbinfra")
ip.run_line_magic("load_ext", "nbinfra")
print(json.dumps(sorted(set(sys.modules) - before)))
"""

HEAVY = (
    "pandas",
    "numpy",
    "matplotlib",
    "pyarrow",
    "ipywidgets",
    "httpx",
    "openai",
    "anthropic",
    "groq",
    "google",
    "huggingface_hub",
    "ollama",
    "redis",
    "psycopg",
    "duckdb",
    "pymongo",
    "qdrant_client",
    "chromadb",
    "boto3",
    "atlassian",
    "tiktoken",
    "sqlalchemy",
    "pydantic",  # imported only when a schema= is a pydantic class
    "jsonschema",  # imported only when a schema= dict is checked
    "pyspark",
    "py4j",
)


def test_load_ext_imports_nothing_heavy() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "nbinfra.notebook.magics" in loaded
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY]
    assert heavy == []
    # nor any backend module of nbinfra itself
    assert [
        m
        for m in loaded
        if m.startswith(("nbinfra.llm.", "nbinfra.connections.", "nbinfra.cache."))
    ] == []


def test_load_unload_reload(_shell: TestingShell) -> None:
    magics = _shell.magics_manager.magics
    _shell.run_line_magic("load_ext", "nbinfra")
    first = _shell._nbinfra_magics
    _shell.run_line_magic("load_ext", "nbinfra")  # harmless
    assert _shell._nbinfra_magics is first
    assert {"llm", "cache", "conn"} <= set(magics["line"])
    assert {"llm", "conn"} <= set(magics["cell"])
    _shell.run_line_magic("unload_ext", "nbinfra")
    assert not {"llm", "cache", "conn"} & set(magics["line"])
    assert not {"llm", "conn"} & set(magics["cell"])
    assert first not in _shell.configurables
    _shell.run_line_magic("load_ext", "nbinfra")
    assert _shell._nbinfra_magics is not first
    _shell.run_line_magic("unload_ext", "nbinfra")


def test_help_is_real(ip: TestingShell) -> None:
    doc = ip.find_line_magic("llm").__doc__
    for flag in ("--provider", "--max-tokens", "--no-interpolate", "--strategy", "--budget"):
        assert flag in doc
    assert "--limit" in ip.find_cell_magic("conn").__doc__
    assert "--ttl" in ip.find_line_magic("cache").__doc__


def test_config_options(ip: TestingShell) -> None:
    ip.run_line_magic("config", "NbinfraMagics.display_limit = 3")
    ip.run_line_magic("config", "NbinfraMagics.default_provider = 'fake'")
    magics = ip._nbinfra_magics
    assert magics.display_limit == 3
    assert magics.default_provider == "fake"


def test_unknown_option_is_usage_error(ip: TestingShell) -> None:
    with pytest.raises(UsageError, match="Unknown option '--bogus'"):
        ip.run_line_magic("llm", "--bogus hello")
    with pytest.raises(UsageError, match="needs a value"):
        ip.run_line_magic("llm", "-t")
    with pytest.raises(UsageError):
        ip.run_line_magic("llm", "-t hot hello")
    with pytest.raises(UsageError, match="No prompt"):
        ip.run_line_magic("llm", "-t 0.2")
    with pytest.raises(UsageError, match="Unknown %cache command"):
        ip.run_line_magic("cache", "fetch x")
    with pytest.raises(UsageError, match="Usage: %conn"):
        ip.run_line_magic("conn", "")


# -- the ``nbinfra`` name in the user namespace ----------------------------------------
@pytest.fixture
def bare(_shell: TestingShell) -> Iterator[TestingShell]:
    """The shell without the extension and with a fresh namespace; cleaned up after."""
    _shell.run_line_magic("unload_ext", "nbinfra")
    _shell.user_ns.clear()
    _shell.init_user_ns()
    try:
        yield _shell
    finally:
        _shell.run_line_magic("unload_ext", "nbinfra")
        _shell.user_ns.clear()
        _shell.init_user_ns()


def test_load_ext_binds_nbinfra_for_the_widget_lines(bare: TestingShell, tmp_path: Path) -> None:
    import nbinfra
    from nbinfra.session import Session, use_session

    (tmp_path / "application-db.yaml").write_text(
        "connections:\n  duckdb:\n    database: ':memory:'\n"
    )
    assert "nbinfra" not in bare.user_ns
    bare.run_line_magic("load_ext", "nbinfra")
    assert bare.user_ns["nbinfra"] is nbinfra
    with capture_output() as cap:
        bare.run_line_magic("who", "")
    assert "nbinfra" not in cap.stdout  # not a variable the user made
    with Session(resources=tmp_path) as fresh, use_session(fresh):
        bare.cell("%conn duckdb SELECT range AS i FROM range(3)")
        table = bare.cell("nbinfra.widgets.results_table(_conn)")  # no import cell
    assert "3 rows" in table.info
    bare.run_line_magic("unload_ext", "nbinfra")
    assert "nbinfra" not in bare.user_ns and "nbinfra" not in bare.user_ns_hidden


def test_load_ext_keeps_a_name_the_user_took(bare: TestingShell) -> None:
    bare.user_ns["nbinfra"] = "mine"
    bare.run_line_magic("load_ext", "nbinfra")
    assert bare.user_ns["nbinfra"] == "mine"
    bare.run_line_magic("unload_ext", "nbinfra")
    assert bare.user_ns["nbinfra"] == "mine"  # unloading removes only its own binding


def test_unload_keeps_a_rebinding_made_after_load(bare: TestingShell) -> None:
    bare.run_line_magic("load_ext", "nbinfra")
    bare.cell("nbinfra = 42")
    bare.run_line_magic("unload_ext", "nbinfra")
    assert bare.user_ns["nbinfra"] == 42
    bare.run_line_magic("load_ext", "nbinfra")  # taken: left alone
    assert bare.user_ns["nbinfra"] == 42
