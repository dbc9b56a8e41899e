"""%load_ext / %unload_ext, help text, config options."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from IPython.core.error import UsageError

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
