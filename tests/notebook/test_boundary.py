"""The input boundary: IPython expands nothing, nbinfra interpolates by its own rules only.

Every cell goes through a real IPython shell (``run_cell``, so IPython's own input
transformations apply) and the value is read back: row counts, cached values, files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from IPython.core import magic
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from nbinfra.errors import InterpolationError, InvalidOptionError, UnknownOptionError
from nbinfra.notebook._args import tokens
from nbinfra.session import Session, use_session
from nbinfra.testing import PostgresServer
from nbinfra.testing_llm import LLMWireServer, Reply
from tests.notebook import test_llm_magic
from tests.notebook.conftest import TestingShell
from tests.notebook.test_conn_magic import write_resources

# The OpenAI wire server and its session, for what the fake provider cannot show.
wire = test_llm_magic.wire
llm_session = test_llm_magic.llm_session


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    """DuckDB (two names), the fake LLM, and a temp working directory for stray files."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    write_resources(
        tmp_path,
        "default_connection: duckdb\nconnections:\n"
        "  duckdb:\n    database: ':memory:'\n"
        "  analytics:\n    kind: duckdb\n    database: ':memory:'\n",
    )
    (tmp_path / "application-llm.yaml").write_text("llm:\n  default: fake\n")
    with Session(resources=tmp_path) as fresh, use_session(fresh):
        yield fresh


def shown(ip: TestingShell, source: str) -> str:
    """What the user sees when ``source`` fails: IPython's own error display, captured."""
    with capture_output() as cap:
        result = ip.shell.run_cell(source)
    assert not result.success, source
    return (cap.stdout + cap.stderr).strip()


def one_line(text: str) -> str:
    assert "\n" not in text and "Traceback" not in text, text
    return text


def test_every_nbinfra_magic_opts_out_of_ipython_expansion(ip: TestingShell) -> None:
    found = []
    for kind, table in ip.magics_manager.magics.items():
        for name, fn in table.items():
            if str(getattr(fn, "__module__", "")).startswith("nbinfra."):
                found.append((kind, name))
                assert getattr(fn, magic.MAGIC_NO_VAR_EXPAND_ATTR, False), (kind, name)
    expected = {("line", "llm"), ("cell", "llm"), ("line", "cache"), ("line", "conn")}
    assert expected | {("cell", "conn")} <= set(found)


def test_braces_in_sql_stay_literal_text_and_binds_are_parameters(
    ip: TestingShell, offline: Session
) -> None:
    ip.cell("%conn duckdb CREATE TABLE t AS SELECT 'v' || range AS v FROM range(5)")
    ip.cell("name = \"x' OR '1'='1\"")
    injected = ip.cell("%conn duckdb SELECT count(*) FROM t WHERE v = '{name}'")
    assert injected.rows == [(0,)]  # IPython used to paste the value: 5 rows
    assert ip.cell("%conn duckdb SELECT count(*) FROM t WHERE v = :name").rows == [(0,)]
    ip.cell("name = 'v3'")
    assert ip.cell("%conn duckdb SELECT count(*) FROM t WHERE v = :name").rows == [(1,)]
    assert ip.cell("%conn duckdb SELECT '{name}' AS s, '$name' AS d").rows == [("{name}", "$name")]


def test_dollar_quoted_sql_is_untouched(ip: TestingShell, offline: Session) -> None:
    ip.cell("x = 'pasted'")
    assert ip.cell("%conn duckdb SELECT $$x$$ AS s").rows == [("x",)]
    assert ip.cell("%%conn duckdb\nSELECT $$it's $x$$ AS s").rows == [("it's $x",)]


@pytest.mark.service
def test_dollar_quoted_sql_on_postgres(
    ip: TestingShell, tmp_path: Path, postgres_server: PostgresServer
) -> None:
    url = postgres_server.url
    write_resources(tmp_path, f"connections:\n  pg:\n    kind: postgres\n    url: '{url}'\n")
    fresh = Session(resources=tmp_path)
    with use_session(fresh):
        ip.cell("x = 'pasted'")
        assert ip.cell("%conn pg SELECT $$x$$ AS s").rows == [("x",)]
        assert ip.cell("%conn pg SELECT $tag$a{x}b$tag$ AS s").rows == [("a{x}b",)]
    fresh.close()


def test_prompts_never_evaluate_calls(ip: TestingShell, offline: Session) -> None:
    ip.cell("topic = 'caches'\nclass O:\n    name = 'Ada'\nobj = O()\nd = {'k': [10, 20]}")
    with capture_output():
        ip.cell("%llm --no-stream -f text say {open('f','w').write('x')} about {topic}")
    assert not Path("f").exists()
    prompt = ip.user_ns["_llm"].content
    assert "say {open('f','w').write('x')} about caches" in prompt
    with capture_output():
        ip.cell("%llm --no-stream -f text {__import__('os').mkdir('g')} {obj.name} {d[k][1]}")
    assert not Path("g").exists()
    assert "{__import__('os').mkdir('g')} Ada 20" in ip.user_ns["_llm"].content
    with capture_output():
        ip.cell('%%llm --no-stream -f text\n{obj.name.upper()} and $topic and {"json": 1}')
    assert '{obj.name.upper()} and $topic and {"json": 1}' in ip.user_ns["_llm"].content
    assert sorted(p.name for p in Path().iterdir()) == []


@pytest.mark.parametrize("method", ["__format__", "__str__", "__repr__"])
def test_a_value_that_cannot_be_shown_is_one_line(
    ip: TestingShell, offline: Session, method: str
) -> None:
    args = "self, spec" if method == "__format__" else "self"
    body = "raise RuntimeError('boom\\nsecond')"
    ip.cell(f"class Bad:\n    def {method}({args}):\n        {body}\nb = Bad()")
    field = "{b!r}" if method == "__repr__" else "{b}"
    text = one_line(shown(ip, f"%llm --no-stream about {field}"))
    assert text.startswith(f"InterpolationError: Cannot format {field}: RuntimeError: boom.")
    assert "_llm" not in ip.user_ns  # nothing was sent
    with pytest.raises(InterpolationError):
        ip.cell(f"%%llm --no-stream\nabout {field}")


def test_cache_dollar_names_fill_values_and_arguments(ip: TestingShell, offline: Session) -> None:
    ip.cell("word = 'hello'\nkey = 'greeting'\nrows = {'a': [1, 2]}\nns = 'mine'")
    ip.cell("%cache set k $word")
    assert ip.cell("%cache get k") == "hello"
    ip.cell("%cache set $key $rows")
    assert ip.cell("%cache get greeting") == {"a": [1, 2]}
    ip.cell("%cache -n $ns set user:$key '$word'")
    assert ip.cell("%cache -n mine get user:greeting") == "$word"  # a literal stays literal
    ip.cell("%cache set price$$ 5")
    assert ip.cell("%cache get price$") == 5
    assert ip.cell("%cache list g*") == ["greeting"]
    assert "No variable named 'nope'" in one_line(shown(ip, "%cache get $nope"))
    assert "is a dict" in one_line(shown(ip, "%cache get $rows"))


@pytest.mark.parametrize("ttl", ["inf", "nan", "1e309", "-inf", "0", "-1"])
def test_ttl_must_be_finite_and_positive(ip: TestingShell, offline: Session, ttl: str) -> None:
    text = one_line(shown(ip, f"%cache set k 1 --ttl {ttl}"))
    assert text.startswith("UsageError: --ttl must be a finite number of seconds more than 0")
    assert ip.cell("%cache get k") is None  # nothing half-written
    ip.cell("t = 30")
    ip.cell("%cache set k 1 --ttl $t")
    assert ip.cell("%cache get k") == 1


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ("-t abc", "UsageError: argument -t/--temperature: invalid float value: 'abc'"),
        ("-t 5", "InvalidOptionError: temperature must be between 0 and 2, got 5.0."),
        ("-t nan", "InvalidOptionError: temperature must be between 0 and 2, got nan."),
        ("--max-tokens -1", "InvalidOptionError: max_tokens must be at least 1, got -1."),
        ("--max-tokens 0", "InvalidOptionError: max_tokens must be at least 1, got 0."),
        ("-m ' '", "InvalidOptionError: model must be a non-empty string, got ' '."),
        ("-s ' '", "InvalidOptionError: system must be a non-empty string, got ' '."),
    ],
)
def test_bad_llm_options_are_one_line(
    ip: TestingShell, offline: Session, options: str, error: str
) -> None:
    assert one_line(shown(ip, f"%llm --no-stream {options} hi")) == error
    assert "_llm" not in ip.user_ns


def test_core_option_errors_are_nbinfra_errors_and_still_value_errors(offline: Session) -> None:
    import nbinfra

    model = nbinfra.llm("fake")
    with pytest.raises(InvalidOptionError, match="between 0 and 2") as info:
        model.generate("hi", temperature=5)
    assert isinstance(info.value, ValueError)
    with pytest.raises(UnknownOptionError, match="Did you mean 'temperature'") as unknown:
        model.generate("hi", temprature=0.1)
    assert isinstance(unknown.value, TypeError) and isinstance(unknown.value, ValueError)
    with pytest.raises(InvalidOptionError, match="ttl must be"):
        nbinfra.cache.cache("boundary").set("k", 1, ttl=float("inf"))


@pytest.mark.parametrize(
    "name",
    [
        *("'a b'", "get_ipython", "In", "Out", "exit", "quit", "_", "__", "_ih", "_oh"),
        *("_dh", "_i", "_ii", "_i3", "_7", "list", "print", "open", "class", "1x", "a-b"),
    ],
)
def test_output_names_that_would_break_the_shell_are_refused(
    ip: TestingShell, offline: Session, name: str
) -> None:
    before = {k: ip.user_ns.get(k) for k in ("get_ipython", "In", "Out", "_ih")}
    for cell in (f"%llm --no-stream -o {name} hi", f"%conn -o {name} duckdb SELECT 1"):
        text = one_line(shown(ip, cell))
        assert text.startswith("UsageError: -o "), text
        assert "choose another" in text or "variable name" in text
    assert {k: ip.user_ns.get(k) for k in before} == before
    assert ip.cell("get_ipython() is not None") is True


def test_output_name_that_is_fine(ip: TestingShell, offline: Session) -> None:
    with capture_output():
        ip.cell("%llm --no-stream -o answer hi")
    assert ip.user_ns["answer"] is ip.user_ns["_llm"]
    ip.cell("%%conn duckdb -o res\nSELECT 42 AS n")
    assert ip.user_ns["res"].rows == [(42,)]


@pytest.mark.parametrize(
    ("cell", "usage"),
    [
        ("%llm -h", "%llm [-p PROVIDER]"),
        ("%llm --help", "--no-interpolate"),
        ("%llm -p fake -h", "%llm [-p PROVIDER]"),
        ("%%llm --help\nhi", "%llm [-p PROVIDER]"),
        ("%cache -h", "%cache [-n NAMESPACE]"),
        ("%conn --help", "%conn [-o VAR]"),
        ("%%conn duckdb -h\nSELECT 1", "%conn [-o VAR]"),
    ],
)
def test_help_option_prints_the_help(
    ip: TestingShell, offline: Session, cell: str, usage: str
) -> None:
    with capture_output() as cap:
        assert ip.cell(cell) is None
    assert usage in cap.stdout and "options:" in cap.stdout
    assert "Unknown option" not in cap.stdout + cap.stderr
    assert "_llm" not in ip.user_ns


def test_unknown_connection_names_the_configured_ones_and_the_nearest(
    ip: TestingShell, offline: Session
) -> None:
    text = one_line(shown(ip, "%conn nosuch"))
    assert text == "UsageError: no connection named 'nosuch'; configured: analytics, duckdb."
    text = one_line(shown(ip, "%conn duckd SELECT 1"))
    assert text.endswith("configured: analytics, duckdb. Did you mean 'duckdb'?")
    assert "Did you mean 'analytics'?" in one_line(shown(ip, "%%conn analytic\nSELECT 1"))
    assert "Did you mean 'duckdb'?" in one_line(shown(ip, "%conn use duckbd"))
    assert one_line(shown(ip, "%conn duckdb")).startswith("UsageError: No query for 'duckdb'")


def test_long_lines_are_read_whole(
    ip: TestingShell, offline: Session, wire: LLMWireServer, llm_session: Session
) -> None:
    """60,000 characters of braces and dollars: nothing is expanded, nothing is lost."""
    body = "{" * 20_000 + "$x" * 10_000 + "}" * 20_000
    with use_session(offline):
        result = ip.cell(f"%conn duckdb SELECT length($q${body}$q$) AS n")
        assert result.rows == [(60_000,)]
        ip.cell(f"%cache set long '{body}'")
        assert ip.cell("%cache get long") == body
    wire.push(Reply("ok"), Reply("ok"))
    with capture_output():
        ip.cell(f"%llm -p openai --no-stream -f text {body}")
        halved = "{" * 10_000 + "$x" * 10_000 + "}" * 10_000  # {{ and }} are literal braces
        assert wire.last("chat").json()["messages"][-1]["content"] == halved
        ip.cell(f"%llm -p openai --no-stream -f text --no-interpolate {body}")
        assert wire.last("chat").json()["messages"][-1]["content"] == body


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab -\"'\\$\n\t")), max_size=16))
def test_words_are_read_as_shlex_reads_them(line: str) -> None:
    """The one-pass unquoting agrees with ``shlex`` on every word (and on what is bad)."""
    import shlex

    for token in tokens(line):
        try:
            expected: str | None = " ".join(shlex.split(token.raw))
        except ValueError:
            expected = None
        try:
            got: str | None = token.value
        except UsageError as exc:
            assert "\n" not in str(exc)
            got = None
        assert got == expected, token.raw


def test_parse_functions_read_nothing_and_keep_the_text() -> None:
    from nbinfra.notebook import cache_magic, conn_magic, llm_magic

    prompt = "{open('f','w')} $x '{y}' " + "{" * 1000
    parsed = llm_magic.parse(f"-p fake -t 0.5 -o r {prompt}")
    assert parsed.command is None and parsed.prompt == prompt.strip()
    assert (parsed.options.provider, parsed.options.temperature, parsed.options.output) == (
        "fake",
        0.5,
        "r",
    )
    assert llm_magic.parse("replay record 'a b.jsonl'").argv == ["record", "a b.jsonl"]
    cached = cache_magic.parse("-n $ns set $k [1, '$v'] --ttl 5")
    assert (cached.namespace, cached.command) == ("$ns", "set")
    assert [t.raw for t in cached.argv] == ["$k", "[1,", "'$v']"]
    query = conn_magic.parse("--limit 3 duckdb SELECT $$x$$, :y, '{z}'")
    assert (query.name, query.query, query.options.limit) == (
        "duckdb",
        "SELECT $$x$$, :y, '{z}'",
        3,
    )
    cell = conn_magic.parse("pg -o out", "SELECT 1")
    assert (cell.name, cell.query, cell.options.output) == ("pg", "SELECT 1", "out")
    with pytest.raises(UsageError, match="Too many words"):
        conn_magic.parse("a " * 40, "SELECT 1")
