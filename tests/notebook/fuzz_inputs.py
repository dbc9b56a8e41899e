"""Generated input for the magic fuzz suite (``test_fuzz.py``): hostile atoms, per-form words.

Every strategy yields text a user could type: a line form never holds a line break (IPython
splits a cell at any of ``str.splitlines``'s separators, so such a "line" is two lines of
Python), a cell body may. ``SENTINEL`` stands for a path outside the working directory that
the harness fills in: an expression that ran would create that file.
"""

from __future__ import annotations

from hypothesis import strategies as st

__all__ = ["LINE_BREAKS", "LONG", "SENTINEL", "body", "first_line", "line"]

SENTINEL = "SENTINEL"
LONG = 60_000  # characters in a long line or body
# What str.splitlines (and so IPython's cell splitter) treats as the end of a line.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"

# Code that would have run had anything on the line been evaluated as Python.
INJECTIONS = [
    "{__import__('os').system('touch SENTINEL')}",
    "{open('SENTINEL','w').write('x')}",
    "{open('SENTINEL', 'w')}",
    "{open('created-in-cwd', 'w')}",
    "{exec(\"open('SENTINEL','w')\")}",
    "{get_ipython().system('touch SENTINEL')}",
    "{globals().update(get_ipython=1)}",
    "{In.clear()}",
    "{Out.clear()}",
    "{get_ipython().user_ns.clear()}",
    "{x.__class__.__mro__}",
    "{(lambda: open('SENTINEL','w'))()}",
    "$(touch SENTINEL)",
    "`touch SENTINEL`",
    "!touch SENTINEL",
    "{{__import__('os').system('touch SENTINEL')}}",
    "{{{open('SENTINEL','w')}}}",
    "{x!r:{__import__('os').system('touch SENTINEL')}}",
]
BRACES = ["{", "}", "{{", "}}", "{}", "{0}", "{x}", "{ x }", "{x.real}", "{p[x]}", "{p['x']}"]
BRACES += ["{x!r}", "{x:>6}", "{x:{x}}", "{nope}", "{x.nope}", "{p[nope]}", '{"a": 1}', "{x!z}"]
DOLLARS = ["$", "$$", "$x", "$$x$$", "${x}", "$nope", "$1", "$p", "$x.real", "$$ SELECT 1 $$"]
QUOTES = ["'", '"', "'''", '"""', "'a b'", '"a b"', "\\'", '\\"', "\\", "`", "'x' OR '1'='1'"]
CONTROL = ["\x00", "a\x00b", "\t", "\x01", "\x1b[31m", "\x7f", "\b"]
UNICODE = ["é", "日本語", "🙂", "\u200b", "\ufeff", "e\u0301", "\u202e", "ß", "Ω≈ç√", "\U0001f4a9"]
OPTIONS = ["-", "--", "-o", "-o out", "-o get_ipython", "-o In", "-o Out", "-o print"]
OPTIONS += ["-o 'a b'", "-o 1x", "-o _", "--output=In", "-h", "--help", "-x", "--nope"]
OPTIONS += ["--ttl", "--ttl inf", "--ttl nan", "--ttl 1e309", "--ttl -1", "--ttl 0", "-1"]
SQL = ["SELECT", "1", "FROM", "range(3)", "WHERE", "v", "=", ":x", ":p", "::INT", ";", "--"]
SQL += ["/*", "*/", "AS", "count(*)", "?", "$1", "NULL", "'it''s'", "E'\\''", "(", ")", ","]

ATOMS = [*INJECTIONS, *BRACES, *DOLLARS, *QUOTES, *CONTROL, *UNICODE, *OPTIONS, *SQL]

# Random characters: any code point but lone surrogates (no editor or JSON can carry them).
_CHARS = st.characters(blacklist_categories=["Cs"])
_LINE_CHARS = st.characters(blacklist_categories=["Cs"], blacklist_characters=LINE_BREAKS)

# Words per magic: sub-commands and options first, so that real paths are taken often.
WORDS = {
    "llm": [
        "-p fake",
        "--provider fake:fake-echo",
        "-p nope",
        "-m m",
        "-t 0.5",
        "-t nan",
        "-t 9",
        "--max-tokens 5",
        "--max-tokens 0",
        "-s be brief",
        "-f json",
        "-f code",
        "-f text",
        "-f nope",
        "--chat c",
        "--strategy recent",
        "--budget 50",
        "--no-stream",
        "--no-cache",
        "--no-interpolate",
        "list",
        "use fake",
        "use",
        "chats",
        "history c",
        "reset",
        "usage",
        "replay on",
        "replay off",
        "replay load nope.jsonl",
        "hi",
        "what is x?",
    ],
    "cache": [
        "get k",
        "set k",
        "set k 1",
        "set k $x",
        "set k $word",
        "set k [1, 2]",
        "set k {'a': 1}",
        "delete k",
        "list",
        "list *",
        "stats",
        "clear",
        "clear --yes",
        "use memory",
        "use confirmation_cache",
        "use nope",
        "-n ns",
        "--namespace ns",
        "-n ''",
        "k",
        "None",
        "1e999",
        "*",
    ],
    "conn": [
        "duckdb",
        "list",
        "health",
        "health duckdb",
        "use duckdb",
        "use nope",
        "nosuch",
        "--limit 1",
        "--limit -1",
        "--params p",
        "--params nope",
        "SELECT 1",
        "SELECT :x AS v",
        "SELECT count(*) FROM range(3)",
        "SELECT $$x$$",
    ],
}
# Common first lines of a cell magic (the rest are generated like a line form).
FIRST = {
    "llm": ["", "-p fake", "--no-stream", "-f json", "-f code", "--chat c", "-o out"],
    "conn": ["", "duckdb", "duckdb -o out", "-o out", "duckdb --limit 1", "nosuch"],
}


def _token(form: str, chars: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(WORDS[form]),
        st.sampled_from(ATOMS),
        st.text(chars, max_size=10),
    )


def _joined(form: str, chars: st.SearchStrategy[str], seps: list[str]) -> st.SearchStrategy[str]:
    pieces = st.lists(st.tuples(_token(form, chars), st.sampled_from(seps)), max_size=9)
    return pieces.map(lambda items: "".join(tok + sep for tok, sep in items))


def _long(form: str, chars: st.SearchStrategy[str], seps: list[str]) -> st.SearchStrategy[str]:
    """A ``LONG``-character text: a head (a real command) and one generated piece repeated."""

    def build(head: str, piece: str) -> str:
        piece = piece or "{"
        return (head + " " + piece * (LONG // len(piece) + 1))[:LONG]

    return st.builds(build, st.sampled_from(["", *WORDS[form]]), _joined(form, chars, seps))


_LINE_SEPS = [" ", " ", "  ", "\t", ""]
_BODY_SEPS = [" ", "\n", " ", "\n\n", "\r\n", "\t", ""]


def line(form: str, *, long: bool = False) -> st.SearchStrategy[str]:
    """The text after ``%form `` on a one-line cell (``LONG`` characters if ``long``)."""
    make = _long if long else _joined
    return make(form, _LINE_CHARS, _LINE_SEPS)


def first_line(form: str) -> st.SearchStrategy[str]:
    """The text after ``%%form `` on a cell's first line."""
    return st.one_of(st.sampled_from(FIRST[form]), line(form))


def body(form: str, *, long: bool = False) -> st.SearchStrategy[str]:
    """A cell body below ``%%form``: any characters, several lines (``LONG`` if ``long``)."""
    make = _long if long else _joined
    return make(form, _CHARS, _BODY_SEPS)
