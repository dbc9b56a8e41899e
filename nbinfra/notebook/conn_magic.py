"""``%conn`` / ``%%conn``: list, health, use, and queries against any configured connection."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import re
import shlex
from collections import ChainMap
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from IPython.core.error import UsageError

from nbinfra.errors import QueryError
from nbinfra.notebook._args import (
    check_output_name,
    first_word,
    parse_all,
    parse_options,
    tokens,
)
from nbinfra.notebook.interpolate import sql_params

__all__ = ["SUBCOMMANDS", "ConnLine", "connection_names", "parse", "run"]


class ConnLine(NamedTuple):
    """A parsed ``%conn``/``%%conn`` line: a sub-command, or a query for a connection."""

    command: str | None  # list, health or use; None for a query
    argv: list[str]  # the sub-command's words
    options: argparse.Namespace  # -o, --limit, --params, --autocommit
    name: str | None  # the connection named on the line (None: the default)
    query: str  # the query, verbatim (``:name`` binds are read when it runs)


_NO_NAME = (
    "Usage: %conn list | health [NAME] | use NAME | profile NAME TABLE | saved | NAME QUERY, "
    "or %%conn [NAME] with the query in the cell."
)
_TAKES_OUTPUT = frozenset({"profile"})  # sub-commands whose result -o keeps


def parse(line: str, cell: str | None = None) -> ConnLine:
    """Parse a ``%conn`` line (or a ``%%conn`` line and its cell) without running anything.

    Pure and linear in the line's length: no variable is read, nothing is evaluated; the
    query comes back verbatim. Bad options raise ``UsageError``; ``-h``/``--help`` raises
    ``HelpRequested``.
    """
    from nbinfra.notebook.magics import magic_parser

    parser = magic_parser("conn")
    if cell is not None:
        args = parse_all(parser, line)  # %%conn: options may follow the name
        if args.plot:  # %%conn NAME --plot KIND COL...
            _plot_words(args)
        if len(args.command) > 1:
            raise UsageError(
                "%%conn takes one connection name on its line; put the query in the cell."
            )
        if not cell.strip():
            raise UsageError("The cell is empty: write the query below %%conn.")
        return ConnLine(None, [], args, args.command[0] if args.command else None, cell)
    args, rest = parse_options(parser, line)
    if args.plot:
        raise UsageError("--plot is for a %%conn cell: %%conn NAME --plot KIND COL...")
    word, query = first_word(rest)
    given = [args]
    if word in _TAKES_OUTPUT:  # options may follow its words: profile duckdb t -o prof
        after = parse_all(parser, query, most=6)
        if args.output and after.output:
            raise UsageError("-o given twice.")
        after.output = after.output or args.output
        given.append(after)
        args, query = after, " ".join(shlex.quote(word) for word in after.command)
    if word in SUBCOMMANDS:
        if any(_query_options(ns) for ns in given):
            raise UsageError(f"%conn {word} takes no --limit/--params/--autocommit/--save/--plot.")
        if args.output and word not in _TAKES_OUTPUT:
            raise UsageError(f"%conn {word} takes no -o.")
        argv = [t.value for t in tokens(query, 3)]  # none takes more than 2 words
        return ConnLine(word, argv, args, None, "")
    if not word:
        raise UsageError(_NO_NAME)
    return ConnLine(None, [], args, tokens(word)[0].value, query)


def _query_options(args: argparse.Namespace) -> bool:
    """Whether any option that only a query takes is set."""
    return bool(
        args.limit is not None
        or args.params
        or args.autocommit
        or args.save
        or args.no_execute
        or args.plot
    )


def run(magics: Any, line: str, cell: str | None) -> Any:
    parsed = parse(line, cell)
    name, args = parsed.name, parsed.options
    if args.output:
        check_output_name(args.output, getattr(magics.shell, "user_ns_hidden", ()))
    if parsed.command is not None:
        result = SUBCOMMANDS[parsed.command](magics, parsed.argv)
        if args.output:
            magics.user_ns[args.output] = result
        return result
    if name is not None:
        _check_name(name, kinds=True)
    if not parsed.query:
        raise UsageError(f"No query for {name!r}: %conn {name} QUERY, or %%conn {name}.")
    return execute(magics, args, name, parsed.query)


def default_name(magics: Any) -> str | None:
    """``%conn use`` choice, else ``%config NbinfraMagics.conn_default``, else the config's."""
    name: str | None = magics.state.connection or magics.conn_default or None
    return name


def _connection(name: str | None) -> Any:
    from nbinfra.connections import conn

    return conn(name)


def execute(magics: Any, args: Any, name: str | None, query: str) -> Any:
    ns = magics.user_ns
    if args.limit is not None and args.limit < 0:
        raise UsageError("--limit must be zero or more.")
    extra: dict[str, Any] = {}
    if args.params:
        value = ns.get(args.params)
        if not isinstance(value, dict):
            raise UsageError(f"--params {args.params}: no dict variable named {args.params!r}.")
        extra = dict(value)
    conn = _connection(name or default_name(magics))  # None: default_connection
    # What the connection says of itself: whether it speaks SQL, how to split, how it
    # binds (its kind's rules, or its own where they depend on its settings: a URL's dialect).
    manager = conn.manager
    sql = manager.speaks_sql
    statements = manager.statements(query)
    if not statements:
        raise UsageError("No statement to run (only comments or semicolons).")
    saved = magics.state.saved
    if args.save:
        saved.save(conn.name, args.save, statements, manager.sql_dialect())
        if args.no_execute:
            return None
    elif args.no_execute:
        raise UsageError("--no-execute goes with --save NAME.")
    if sql and saved.by_connection.get(conn.name):
        composed = saved.compose(conn.name, statements, manager.sql_dialect())
        if composed != statements:
            statements, query = composed, ";\n".join(composed)
    results = []
    script = getattr(conn.manager, "execute_script", None)
    if args.autocommit and not sql:
        raise UsageError(
            f"--autocommit is for SQL connections; {conn.manager.kind or name!r} is not one."
        )
    values = ChainMap(extra, ns)
    if getattr(args, "plot", None):
        return _plot(magics, args, conn, statements, values)
    # A kind that reads DataFrames by name: the notebook's pandas/Polars/Arrow variables
    # among the names each statement reads as tables (the kind's own parser says which).
    frames = _Frames(conn.manager, ns) if sql and manager.frames_by_name else None
    if len(statements) > 1 and script is not None:
        # One call on one connection: the script is one transaction (all or nothing), or
        # its own BEGIN ... COMMIT/ROLLBACK spans the statements.
        params = sql_params(manager.binds(query), values) or None
        found = frames.among(statements) if frames else {}
        with _explained(frames):
            results = list(
                conn.execute_script(
                    query,
                    params,
                    limit=args.limit,
                    autocommit=args.autocommit,
                    **({"frames": found} if found else {}),
                )
            )
    else:
        for statement in statements:
            params = None
            if sql:
                params = sql_params(manager.binds(statement), values) or None
            elif extra:
                params = extra
            found = frames.among([statement]) if frames else {}
            with _explained(frames):
                if found:
                    results.append(conn.sql(statement, params, args.limit, frames=found))
                else:
                    run = conn.sql if sql else conn.query
                    results.append(run(statement, params, limit=args.limit))
    magics.state.ran(conn.name, statements)
    ns["_conn"] = results[-1]
    if args.output:
        ns[args.output] = results[-1] if len(results) == 1 else results
    if len(results) > 1:
        from nbinfra.notebook.display import show as display

        for result in results[:-1]:
            display(result)
    return results[-1]


def _plot_words(args: Any) -> None:
    """``--plot KIND COL...`` -> ``args.plot`` (the kind) and ``args.plot_columns``."""
    from nbinfra.plots import KINDS

    kind, *columns = args.plot
    if kind not in KINDS:
        raise UsageError(f"--plot {kind}: use one of {', '.join(KINDS)}, then the columns.")
    if not columns:
        raise UsageError(f"Usage: %%conn NAME --plot {kind} COL...: name the columns to plot.")
    args.plot, args.plot_columns = kind, columns


def _plot(magics: Any, args: Any, conn: Any, statements: list[str], values: Any) -> Any:
    """``--plot``: the cell's one query, plotted with its aggregates computed in the engine."""
    if len(statements) != 1:
        raise UsageError("--plot takes one query in the cell (a SELECT); run the others first.")
    from nbinfra.plots import plot_query

    manager = conn.manager
    params = sql_params(manager.binds(statements[0]), values) or None
    frames = _Frames(manager, magics.user_ns) if manager.frames_by_name else None
    found = frames.among(statements) if frames else {}
    with _explained(frames):
        figure = plot_query(
            conn,
            statements[0],
            args.plot,
            args.plot_columns,
            params=params,
            bins=args.bins,
            frames=found or None,
        )
    if args.output:
        magics.user_ns[args.output] = figure
    return figure


class _Frames:
    """The notebook's DataFrames that statements read by name (see connections/frames.py)."""

    def __init__(self, manager: Any, namespace: Mapping[str, Any]) -> None:
        self.manager = manager
        self.namespace = namespace
        self.mistyped: dict[str, str] = {}  # name -> why that variable is no DataFrame

    def among(self, statements: list[str]) -> dict[str, Any]:
        from nbinfra.connections.frames import frames_for

        names = [name for statement in statements for name in self.manager.table_names(statement)]
        found = frames_for(dict.fromkeys(names), self.namespace)
        self.mistyped.update(found.mistyped)
        return found.frames


@contextlib.contextmanager
def _explained(frames: _Frames | None) -> Iterator[None]:
    """A query error naming a variable that is no DataFrame says so, in its one line."""
    try:
        yield
    except QueryError as exc:
        notes = [
            line
            for name, line in (frames.mistyped.items() if frames else ())
            if re.search(rf"\b{re.escape(name)}\b", exc.message)
        ]
        if not notes:
            raise
        raise QueryError(f"{exc.message} ({'; '.join(notes)})") from exc


# -- sub-commands --------------------------------------------------------------------
def _list(magics: Any, argv: list[str]) -> Any:
    if argv:
        raise UsageError("Usage: %conn list")
    from nbinfra.notebook.display import Table
    from nbinfra.notebook.health import check, detail
    from nbinfra.notebook.tables import Column, mark

    specs = _specs()
    statuses = check(list(specs)).connections
    rows = []
    for name, spec in specs.items():
        st = statuses[name]
        rows.append(
            (
                name,
                spec.kind,
                st.target,  # the manager's: what the connection really uses
                mark(st.state),
                "" if st.latency is None else f"{st.latency * 1000:.1f} ms",
                detail(name, st),
            )
        )
    columns: list[str | Column] = [
        "name",
        "kind",
        "target",
        "health",
        Column("latency", right=True),
        Column("error", wide=True),
    ]
    return Table(columns, rows)


def _health(magics: Any, argv: list[str]) -> Any:
    if len(argv) > 1:
        raise UsageError("Usage: %conn health [NAME]")
    if argv:
        from nbinfra.notebook.health import check

        _check_name(argv[0])
        return check(argv, start=True).connections[argv[0]]
    from nbinfra.notebook.display import Table
    from nbinfra.notebook.health import check

    statuses = check(list(_specs())).connections
    from nbinfra.notebook.tables import Column, mark

    return Table(
        ["name", "health", Column("status", wide=True)],
        [(name, mark(status.state), str(status)) for name, status in statuses.items()],
    )


def _use(magics: Any, argv: list[str]) -> Any:
    if len(argv) != 1:
        raise UsageError("Usage: %conn use NAME")
    _check_name(argv[0])
    magics.state.connection = argv[0]
    return None


def _profile(magics: Any, argv: list[str]) -> Any:
    if len(argv) != 2:
        raise UsageError("Usage: %conn profile NAME TABLE (-o VAR keeps the profile)")
    _check_name(argv[0], kinds=True)
    conn = _connection(argv[0])
    frames = None
    if conn.manager.frames_by_name:  # %conn profile duckdb df: a notebook DataFrame by name
        from nbinfra.connections.frames import frames_for

        frames = frames_for([argv[1]], magics.user_ns).frames or None
    return conn.profile(argv[1], frames=frames)


def _saved(magics: Any, argv: list[str]) -> Any:
    saved = magics.state.saved
    if argv[:1] == ["--delete"] and len(argv) == 2:
        if not saved.delete(argv[1]):
            raise UsageError(f"No saved query named {argv[1]!r}; %conn saved lists them.")
        return None
    if argv:
        raise UsageError("Usage: %conn saved | saved --delete NAME")
    from nbinfra.notebook.display import Table

    return Table(["name", "connection", "query"], saved.rows())


def _check_name(name: str, *, kinds: bool = False) -> None:
    """A configured connection's name (or, with ``kinds``, a kind: ``%conn duckdb ...``)."""
    names = sorted(_specs())
    if name in names:
        return
    if kinds:
        from nbinfra.connections.factory import ConnectionRegistry, is_inline

        if name.lower() in ConnectionRegistry.kinds() or is_inline(name):
            return  # a kind, or an inline kind:target (sql:sqlite:///file.db)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    from nbinfra.connections.settings import mask_text

    raise UsageError(
        f"no connection named {mask_text(name)[:60]!r}; configured: "
        f"{', '.join(names) or 'none'}.{hint}"
    )


def _specs() -> dict[str, Any]:
    from nbinfra.notebook.health import specs

    return specs()


def connection_names() -> list[str]:
    return sorted(_specs())


SUBCOMMANDS: dict[str, Callable[[Any, list[str]], Any]] = {
    "health": _health,
    "list": _list,
    "profile": _profile,
    "saved": _saved,
    "use": _use,
}
