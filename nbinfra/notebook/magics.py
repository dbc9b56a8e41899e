"""The ``%llm``/``%%llm``, ``%cache`` and ``%conn``/``%%conn`` magics.

Each magic parses its line here (``magic_arguments`` for the help text, ``_args`` for
parsing that leaves prompts and queries verbatim) and hands over to a small module of
sub-command functions. Defaults are traitlets, set with ``%config NbinfraMagics.<name>``.

Every magic is ``@no_var_expand``: IPython never evaluates ``{expr}`` or ``$name`` in the
line. nbinfra interpolates itself, with one rule per magic: ``:name`` binds in SQL
(``%conn``), ``$name`` in ``%cache`` values and arguments, and ``{name}``/``{obj.attr}``/
``{d[key]}`` in ``%llm`` prompts (never a call).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from IPython.core import magic_arguments as _ma
from IPython.core.magic import (
    Magics,
    line_cell_magic,
    line_magic,
    magics_class,
    no_var_expand,
)
from traitlets import Bool, Int, Unicode

from nbinfra._secrets import redact
from nbinfra.errors import Interrupted, NbinfraError

__all__ = ["NbinfraMagics", "NotebookState", "magic_parser"]

_WORK = {"cache_magic": "the cache call", "conn_magic": "the query", "llm_magic": "the LLM call"}
_Deco = Callable[[Callable[..., Any]], Callable[..., Any]]
# IPython's decorators are untyped; these aliases give them a type for mypy.
magic_arguments: Callable[[], _Deco] = _ma.magic_arguments
argument: Callable[..., _Deco] = _ma.argument


class NotebookState:
    """What the magics remember between cells (per shell, never on a class)."""

    def __init__(self) -> None:
        self.cache_namespace: str | None = None
        self.cache_backend: str | None = None
        self.cache_ttl: float | None = None
        self.connection: str | None = None
        self.chats: dict[str, Any] = {}
        self.record_path: str | None = None  # %llm replay record FILE
        self._usage: Any = None
        self._saved: Any = None
        self._catalog: Any = None

    @property
    def catalog(self) -> Any:
        """Tables and columns per connection for Tab in ``%%conn`` cells (sql_complete.py)."""
        if self._catalog is None:
            from nbinfra.notebook.sql_complete import CatalogCache

            self._catalog = CatalogCache()
        return self._catalog

    def ran(self, connection: str, statements: list[str]) -> None:
        """After a ``%%conn`` cell: DDL among ``statements`` makes Tab read the catalogue again."""
        if self._catalog is not None:
            from nbinfra.notebook.sql_complete import is_ddl

            if any(is_ddl(s) for s in statements):
                self._catalog.invalidate(connection)

    @property
    def saved(self) -> Any:
        """The saved queries (``%%conn NAME --save X``), created on first use."""
        if self._saved is None:
            from nbinfra.notebook.saved import SavedQueries

            self._saved = SavedQueries()
        return self._saved

    @property
    def usage(self) -> Any:
        """The token and cost meter (``UsageMeter``), created on first use."""
        if self._usage is None:
            from nbinfra.notebook.usage import UsageMeter

            self._usage = UsageMeter()
        return self._usage


@magics_class
class NbinfraMagics(Magics):
    """nbinfra's magics. Options: ``%config NbinfraMagics``."""

    display_limit = Int(20, help="Rows shown by %conn results and tables.").tag(config=True)
    default_provider = Unicode(
        "", help="Provider[:model] used by %llm when -p is not given ('' = configured default)."
    ).tag(config=True)
    default_format = Unicode(
        "markdown", help="Output format of %%llm: markdown, text, code or json."
    ).tag(config=True)
    streaming = Bool(True, help="Stream %%llm answers into the cell as they arrive.").tag(
        config=True
    )
    short_errors = Bool(True, help="Show nbinfra errors as one line instead of a traceback.").tag(
        config=True
    )
    conn_default = Unicode(
        "", help="Connection used by %%conn when no name is given ('' = default_connection)."
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.state = NotebookState()

    # -- helpers ------------------------------------------------------------------
    @property
    def user_ns(self) -> dict[str, Any]:
        ns: dict[str, Any] = self.shell.user_ns if self.shell is not None else {}
        return ns

    def cell_number(self) -> int | None:
        return getattr(self.shell, "execution_count", None)

    def _run(self, run: Callable[..., Any], *args: Any) -> Any:
        """The one path from a magic to its module, and from what goes wrong to the user.

        ``-h``/``--help`` prints the help; an nbinfra error is one line (``_guard``);
        ``UsageError`` is IPython's own one-line error; an interrupt is one line saying
        what was cancelled (``Interrupted``), never a traceback.
        """
        from nbinfra.notebook._args import HelpRequested

        try:
            return run(self, *args)
        except HelpRequested as shown:
            print(shown.text)
            return None
        except NbinfraError as exc:
            raise self._guard(exc) from exc.__cause__
        except Interrupted:
            raise
        except KeyboardInterrupt:
            # Nothing below said what it cancelled: name the magic's work.
            work = _WORK.get(run.__module__.rsplit(".", 1)[-1], "the magic")
            raise Interrupted(f"Interrupted: {work} was stopped") from None

    def _guard(self, exc: NbinfraError) -> NbinfraError:
        """Keep nbinfra errors one line, or show the traceback when short_errors is off.

        The full traceback is redacted too: a vendor exception in the chain may quote a key.
        """
        if not self.short_errors and self.shell is not None:
            shell, tb = self.shell, exc.__traceback__

            def full() -> list[str]:
                stb = shell.InteractiveTB.structured_traceback(type(exc), exc, tb)
                return [redact(line) for line in stb]

            exc._render_traceback_ = full  # type: ignore[method-assign]
        return exc

    # -- %llm -----------------------------------------------------------------------
    @magic_arguments()
    @argument("-p", "--provider", help="PROVIDER or PROVIDER:MODEL (or a configured name).")
    @argument("-m", "--model", help="Model name (overrides the provider's default).")
    @argument("-t", "--temperature", type=float, help="Sampling temperature.")
    @argument("--max-tokens", type=int, dest="max_tokens", help="Maximum tokens in the answer.")
    @argument("-s", "--system", help="System prompt.")
    @argument(
        "-f",
        "--format",
        choices=["markdown", "text", "code", "json"],
        help="markdown (default), text, code (new cell below) or json (parsed).",
    )
    @argument(
        "-o",
        "--output",
        dest="output",
        metavar="VAR",
        help="Store the LLMResponse in VAR (with --schema: the parsed instance).",
    )
    @argument(
        "--schema",
        metavar="NAME",
        help="Structured output: NAME is a pydantic model class or a JSON-schema dict in "
        "your variables; the answer is validated into it (implies -f json, no streaming).",
    )
    @argument("--chat", metavar="NAME", help="Continue the named chat (history kept).")
    @argument(
        "--strategy",
        choices=["recent", "sliding_window", "summarization"],
        help="How a chat is fitted to the context window.",
    )
    @argument("--budget", type=int, metavar="TOKENS", help="Token budget for a chat's context.")
    @argument(
        "--no-stream", action="store_true", dest="no_stream", help="Wait for the whole answer."
    )
    @argument("--no-cache", action="store_true", dest="no_cache", help="Bypass the response cache.")
    @argument(
        "--no-interpolate",
        action="store_true",
        dest="no_interpolate",
        help="Send {braces} as written (no {name} lookup).",
    )
    @argument("--over", metavar="VAR", help="Map: one prompt per row of this DataFrame/list.")
    @argument("--col", metavar="COLUMN", help="Map: the column sent when there is no template.")
    @argument("--concurrency", type=int, metavar="N", help="Map: requests at a time (8).")
    @argument("--rpm", type=float, metavar="N", help="Map: requests per minute (configured).")
    @argument("--tpm", type=float, metavar="N", help="Map: tokens per minute (configured).")
    @argument("--max-cost", type=float, dest="max_cost", metavar="AMOUNT", help="Map: cost budget.")
    @argument("--fallbacks", metavar="SPECS", help="Map: providers to fall back to, a,b.")
    @no_var_expand
    @line_cell_magic
    def llm(self, line: str, cell: str | None = None) -> Any:
        """Ask an LLM: ``%%llm [options]`` with the prompt in the cell, or ``%llm PROMPT``.

        Sub-commands (line form): ``%llm list``, ``%llm use PROVIDER[:MODEL]``, ``%llm chats``,
        ``%llm history NAME``, ``%llm reset [NAME]``, ``%llm usage``,
        ``%llm replay on|off|record FILE|load FILE``, ``%llm map --over DF ... TEMPLATE``
        (``%%llm --over DF`` with the template in the cell: one prompt per row).
        ``{name}``, ``{obj.attr}`` and ``{d[key]}`` in the prompt come from your variables;
        ``{{``/``}}`` are literal braces.
        """
        from nbinfra.notebook import llm_magic

        return self._run(llm_magic.run, line, cell)

    # -- %cache ---------------------------------------------------------------------
    @magic_arguments()
    @argument(
        "-n", "--namespace", help="Cache namespace (default: the one set by 'use', or notebook)."
    )
    @argument(
        "command",
        nargs="*",
        help="get KEY | set KEY VALUE [--ttl S] | delete KEY | list [PATTERN] | stats | "
        "clear [--yes] | use KIND|NAME. VALUE is a Python literal or $var; $name in "
        "KEY, PATTERN, NAME and -n is the variable's text ($$ is a $).",
    )
    @no_var_expand
    @line_magic
    def cache(self, line: str) -> Any:
        """Read and write the nbinfra cache from a cell."""
        from nbinfra.notebook import cache_magic

        return self._run(cache_magic.run, line)

    # -- %conn ----------------------------------------------------------------------
    @magic_arguments()
    @argument("-o", "--output", dest="output", metavar="VAR", help="Store the result in VAR.")
    @argument("--limit", type=int, metavar="N", help="Fetch at most N rows (server side).")
    @argument("--params", metavar="VAR", help="A dict of parameters from your variables.")
    @argument(
        "--autocommit",
        action="store_true",
        help="Commit each statement of a SQL script as it runs (default: the script is one "
        "transaction, rolled back on any failure, unless it has its own BEGIN/COMMIT).",
    )
    @argument(
        "--plot",
        nargs="+",
        metavar="KIND COL",
        help="%%conn NAME --plot hist|bar|line|box|scatter COL...: plot the cell's query with "
        "the aggregates computed in the engine (only the bins/groups/sample are fetched).",
    )
    @argument(
        "--save",
        metavar="NAME",
        help="Save the cell's SELECT under NAME: later queries on this connection that read "
        "NAME as a table run WITH NAME AS (...).",
    )
    @argument("--no-execute", action="store_true", help="With --save: save without running.")
    @argument("--bins", type=int, default=20, metavar="N", help="Histogram bins (--plot hist).")
    @argument(
        "command",
        nargs="*",
        help="list | health [NAME] | use NAME | profile NAME TABLE | saved [--delete NAME] | "
        "NAME QUERY. In %%conn "
        "the query is the cell body; SQL ':name' binds the variable name as a parameter.",
    )
    @no_var_expand
    @line_cell_magic
    def conn(self, line: str, cell: str | None = None) -> Any:
        """Query any configured connection: ``%conn NAME QUERY`` or ``%%conn [NAME]``."""
        from nbinfra.notebook import conn_magic

        return self._run(conn_magic.run, line, cell)


def magic_parser(name: str) -> argparse.ArgumentParser:
    """The option parser of the magic ``name`` (``llm``, ``cache`` or ``conn``)."""
    parser: argparse.ArgumentParser = getattr(NbinfraMagics, name).parser
    return parser
