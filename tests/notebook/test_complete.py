"""Tab completion of the magics through the real shell's completer (what a kernel answers)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.completer import provisionalcompleter

from nbinfra.session import Session, use_session
from tests.notebook.conftest import TestingShell
from tests.notebook.test_extension import HEAVY
from tests.pyrun import run_python

ORIGIN = "nbinfra.magics"


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    """Two connections (one named after its kind), two cache instances, two providers."""
    res = tmp_path / "resources"
    res.mkdir()
    (res / "application-db.yaml").write_text(
        "connections:\n  duckdb:\n    database: ':memory:'\n"
        "  warehouse:\n    kind: postgres\n    url: postgresql://u@db.example/w\n"
    )
    (res / "application-vector.yaml").write_text("connections: {}\n")
    (res / "application-external.yaml").write_text("connections: {}\n")
    (res / "application-cache.yaml").write_text(
        "cache:\n  backend: memory\n  instances:\n"
        "    session_cache: {namespace: sessions}\n    rate_cache: {namespace: rates}\n"
    )
    (res / "application-llm.yaml").write_text(
        "llm:\n  default: fake\n  providers:\n"
        "    openai:\n      api_key: sk-completion-test-0000\n      model: gpt-4o-mini\n"
        "      models:\n        gpt-4o-mini: {context_window: 128000}\n"
        "        gpt-4o: {context_window: 128000}\n"
    )
    # files starting with the typed letters: the file matcher must not offer them
    for name in ("duck_notes.txt", "data.csv", "openai.log"):
        (tmp_path / name).write_text("x")
    monkeypatch.chdir(tmp_path)
    fresh = Session(resources=res)
    with use_session(fresh):
        yield fresh
    fresh.close()


def tab(ip: TestingShell, text: str) -> list[tuple[str, str]]:
    """``(text, type)`` of each completion IPython gives at the end of ``text``; every one
    must come from nbinfra's matcher and replace exactly the word being typed."""
    with provisionalcompleter():
        found = list(ip.Completer.completions(text, len(text)))
    word = text.rsplit(None, 1)[-1] if not text[-1:].isspace() else ""
    for c in found:
        assert c._origin == ORIGIN, (text, c)
        assert (c.start, c.end) == (len(text) - len(word), len(text)), (text, c)
    return [(c.text, c.type) for c in found]


def texts(ip: TestingShell, text: str) -> list[str]:
    return [t for t, _ in tab(ip, text)]


def ours(ip: TestingShell, text: str) -> list[str]:
    """nbinfra's completions among all that IPython gives (other matchers may answer)."""
    with provisionalcompleter():
        found = list(ip.Completer.completions(text, len(text)))
    return [c.text for c in found if c._origin == ORIGIN]


def test_conn_d_completes_duckdb_alone(ip: TestingShell, configured: Session) -> None:
    # one typed candidate: Jedi, the file names and IPython's magic names are suppressed
    assert tab(ip, "%conn d") == [("duckdb", "connection")]
    assert tab(ip, "x = 1\n%conn d") == [("duckdb", "connection")]  # not the first line


def test_conn_names_kinds_and_subcommands(ip: TestingShell, configured: Session) -> None:
    found = tab(ip, "%conn ")
    assert found[:7] == [
        ("health", "command"),
        ("list", "command"),
        ("profile", "command"),
        ("saved", "command"),
        ("use", "command"),
        ("duckdb", "connection"),
        ("warehouse", "connection"),
    ]
    kinds = [t for t, kind in found[7:] if kind == "kind"]
    assert kinds == sorted(kinds) and {"postgres", "redis", "s3"} <= set(kinds)
    assert "duckdb" not in kinds  # a configured name is offered once, as a connection
    assert tab(ip, "%conn p") == [
        ("profile", "command"),
        ("pgvector", "kind"),
        ("postgres", "kind"),
    ]
    assert tab(ip, "%conn use w") == [("warehouse", "connection")]
    assert tab(ip, "%conn health d") == [("duckdb", "connection")]
    assert texts(ip, "%conn -o r ") == ["duckdb", "warehouse", *kinds]  # no sub-command now


def test_conn_options(ip: TestingShell, configured: Session) -> None:
    options = tab(ip, "%conn -")
    assert ("--limit", "option") in options and ("-o", "option") in options
    assert {kind for _, kind in options} == {"option"}
    assert texts(ip, "%conn --l") == ["--limit"]
    assert texts(ip, "%conn --h") == ["--help"] and texts(ip, "%llm -h") == ["-h"]
    assert texts(ip, "%%conn duckdb --pa") == ["--params"]  # %%conn: options after the name
    assert texts(ip, "%%conn duckdb --p") == ["--params", "--plot"]
    assert texts(ip, "%%conn duckdb --s") == ["--save"]


def test_cell_conn_completes_only_its_first_line(ip: TestingShell, configured: Session) -> None:
    assert texts(ip, "%%conn ")[:2] == ["duckdb", "warehouse"]
    assert "use" not in texts(ip, "%%conn ")  # %%conn takes a name, not a sub-command
    assert texts(ip, "%%conn -o r w") == ["warehouse"]
    assert ours(ip, "%%conn duckdb\nSELECT d") == []


def test_llm_subcommands_providers_models_and_values(ip: TestingShell, configured: Session) -> None:
    assert texts(ip, "%llm ") == [
        "chats", "history", "list", "map", "replay", "reset", "usage", "use",
    ]  # fmt: skip
    assert texts(ip, "%llm us") == ["usage", "use"]
    found = tab(ip, "%llm -p op")
    assert found[0] == ("openai", "provider")
    assert {("openai:gpt-4o", "model"), ("openai:gpt-4o-mini", "model")} <= set(found)
    assert texts(ip, "%llm -m gpt-4o-m") == ["gpt-4o-mini"]
    assert tab(ip, "%llm use fa") == [("fake", "provider"), ("fake:fake-echo", "model")]
    assert texts(ip, "%llm --strategy s") == ["sliding_window", "summarization"]
    assert texts(ip, "%llm -f j") == ["json"]
    assert texts(ip, "%llm replay o") == ["off", "on"]
    assert texts(ip, "%llm --max") == ["--max-cost", "--max-tokens"]
    assert texts(ip, "%%llm --no-s") == ["--no-stream"]


def test_llm_chat_names(ip: TestingShell, configured: Session) -> None:
    ip.cell("%%llm --chat trip --no-stream -f text\nWhere shall we go?")
    assert tab(ip, "%llm history t") == [("trip", "chat")]
    assert tab(ip, "%%llm --chat t") == [("trip", "chat")]


def test_prompt_text_is_not_completed_by_nbinfra(ip: TestingShell, configured: Session) -> None:
    for text in ("%llm tell me about d", "%conn duckdb SELECT d", "%llm -p fake hello u"):
        assert ours(ip, text) == [], text


def test_cache_subcommands_namespaces_and_backends(ip: TestingShell, configured: Session) -> None:
    assert texts(ip, "%cache ") == ["clear", "delete", "get", "list", "set", "stats", "use"]
    assert tab(ip, "%cache -n ") == [
        ("notebook", "namespace"),
        ("rates", "namespace"),
        ("sessions", "namespace"),
    ]
    assert tab(ip, "%cache -n rates g") == [("get", "command")]
    from nbinfra.cache.registry import CacheRegistry

    # Every registered kind is offered (an installed plugin's too), then the instances.
    assert tab(ip, "%cache use ") == [
        *((kind, "backend") for kind in CacheRegistry.kinds()),
        ("rate_cache", "cache"),
        ("session_cache", "cache"),
    ]
    assert texts(ip, "%cache set k 1 --t") == ["--ttl"]
    assert texts(ip, "%cache clear --") == ["--yes"]
    assert texts(ip, "%cache --n") == ["--namespace"]


def test_other_lines_are_left_to_ipython(ip: TestingShell, configured: Session) -> None:
    for text in ("pri", "%con", "conn = 1; con"):
        with provisionalcompleter():
            found = list(ip.Completer.completions(text, len(text)))
        assert found and all(c._origin != ORIGIN for c in found), text


def test_tab_never_raises(
    ip: TestingShell, configured: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    assert texts(ip, "%conn\td") == ["duckdb"]  # a tab after the name is a separator too
    assert ours(ip, "%llm 'unclosed ") == []
    assert ours(ip, "%cache set 'k") == []
    (Path.cwd() / "resources" / "application-db.yaml").write_text("connections: [broken\n")
    with use_session(Session(resources=Path.cwd() / "resources")):
        assert ours(ip, "%conn ") == []  # unreadable settings: no candidates, no traceback
    assert "Traceback" not in capsys.readouterr().err


def test_unload_removes_the_matcher(ip: TestingShell, configured: Session) -> None:
    assert texts(ip, "%conn d") == ["duckdb"]
    ip.run_line_magic("unload_ext", "nbinfra")
    assert not [m for m in ip.Completer.custom_matchers if type(m).__name__ == "_Matcher"]
    ip.run_line_magic("load_ext", "nbinfra")
    assert texts(ip, "%conn d") == ["duckdb"]
    matchers = [m for m in ip.Completer.custom_matchers if type(m).__name__ == "_Matcher"]
    assert len(matchers) == 1  # loading again does not stack matchers


_CHILD = """
import json, sys
from IPython.core.completer import provisionalcompleter
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "nbinfra")
loaded_by_load = "nbinfra.notebook.complete" in sys.modules
before = set(sys.modules)
found = {}
with provisionalcompleter():
    for text in ("%conn d", "%conn ", "%%conn ", "%llm -p ", "%llm use ", "%cache use ",
                 "%cache -n "):
        found[text] = [c.text for c in ip.Completer.completions(text, len(text))]
print(json.dumps([loaded_by_load, found, sorted(set(sys.modules) - before)]))
"""


def test_completion_imports_no_driver_and_load_ext_imports_no_completer() -> None:
    out = run_python(_CHILD)
    assert out.returncode == 0, out.stderr
    loaded_by_load, found, imported = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded_by_load is False  # %load_ext stays fast: the completer loads on Tab
    assert found["%conn d"] == ["duckdb"] and "fake" in found["%llm -p "]
    assert "memory" in found["%cache use "] and "notebook" in found["%cache -n "]
    assert [m for m in imported if m.split(".")[0] in HEAVY] == []
