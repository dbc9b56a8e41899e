"""Notebook widgets: kernel-side ipywidgets, and one anywidget (its front end ships in the
``anywidget`` wheel's JupyterLab extension).

``results_table`` pages, sorts and filters in the engine and sends only the visible page;
``provider_picker`` sets the default provider of ``%llm``; ``context_preview`` shows what a
chat keeps, drops or summarises under a strategy and token budget; ``health_panel``
checks every configured connection and cache. ipywidgets is imported on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nbinfra.connections.settings import one_line
from nbinfra.notebook import tables
from nbinfra.notebook.tables import Column, Mark, escape

__all__ = ["context_preview", "health_panel", "provider_picker", "results_table"]


def _w() -> Any:
    import ipywidgets

    return ipywidgets


# -- results_table -------------------------------------------------------------------
def results_table(
    result_or_df: Any, page_size: int = 20, *, download_dir: str | Path = "nbinfra-downloads"
) -> Any:
    """A paged table like JupyterLab's own: click a header to sort (again: descending, a third
    time: unsorted), a filter box per column in the header, rows per page, "Copy page" (TSV
    to the clipboard) and downloads of the whole sorted, filtered result (CSV or Parquet).

    Sorting, filtering and downloads run in DuckDB (``result_view``); only the visible
    page is fetched and sent to the browser. An anywidget (``results_widget``), imported
    on first call."""
    from nbinfra.notebook.results_widget import results_table as build

    return build(result_or_df, page_size, download_dir=download_dir)


# -- provider_picker -----------------------------------------------------------------
def _magics() -> Any:
    """The loaded ``NbinfraMagics`` of the running shell (``%load_ext nbinfra``), if any."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is there whenever widgets are
        return None
    shell = get_ipython()
    return getattr(shell, "_nbinfra_magics", None) if shell is not None else None


def _provider_label(st: Any) -> str:
    key = "key set" if st.key_set else "no key"
    reach = {True: "reachable", False: "unreachable", None: "not checked"}[st.reachable]
    extra = " · offline stand-in" if getattr(st, "stand_in", False) else ""
    if not getattr(st, "available", True):
        extra += " · SDK not installed"
    return f"{st.provider} ({key}, {reach}{extra})"


def _in_use(spec: str, settings: Any, statuses: dict[str, Any]) -> tuple[str, str, str]:
    """(provider, model, why) that ``%llm`` uses for ``spec`` ('' = the configured default)."""
    from nbinfra.llm.factory import resolve, select_default
    from nbinfra.llm.settings import LLMSettings

    try:
        conf = LLMSettings.load(settings)
        chosen = resolve(spec, conf) if spec else select_default(conf, settings=settings)
    except Exception:  # noqa: BLE001 - the picker still opens, on no choice
        return "", "", ""
    st = statuses.get(chosen.kind)
    model = chosen.model or (st.default_model if st is not None else "") or ""
    why = "set by %llm use or this picker" if spec else chosen.reason
    return chosen.kind, model, why


def provider_picker(*, probe: bool = False, magics: Any = None) -> Any:
    """Providers and models with key/reachability state; choosing sets ``%llm``'s default.

    It opens on what ``%llm`` uses now (the provider and model, named in its label);
    opening it changes nothing."""
    from nbinfra.llm import provider_statuses
    from nbinfra.session import session

    w = _w()
    target = magics if magics is not None else _magics()
    settings = session().settings
    statuses = {st.provider: st for st in provider_statuses(settings, probe_reachability=probe)}
    spec = getattr(target, "default_provider", "") or ""
    kind, current_model, why = _in_use(spec, settings, statuses)
    provider = w.Dropdown(
        options=[(_provider_label(st), name) for name, st in statuses.items()],
        value=kind if kind in statuses else None,
        description="provider",
    )
    model = w.Dropdown(options=[], description="model")
    state = w.HTML()
    opening = True

    def models_for(name: str | None, wanted: str = "") -> None:
        st = statuses.get(name or "")
        options = list(st.models) if st is not None else []
        if wanted and wanted not in options:
            options = sorted([*options, wanted])
        model.options = options
        if st is not None:
            pick = wanted or st.default_model
            if pick in options:
                model.value = pick

    def chosen(*_: Any) -> None:
        if opening:
            return
        if provider.value is None:
            state.value = "<small>%llm uses the configured default.</small>"
            return
        spec = provider.value if not model.value else f"{provider.value}:{model.value}"
        if target is not None:
            target.default_provider = spec
            state.value = f"<small>%llm now uses <code>{escape(spec)}</code>.</small>"
        else:
            state.value = (
                f"<small>Selected <code>{escape(spec)}</code>; run %load_ext nbinfra so "
                "%llm uses it.</small>"
            )
        box.value = spec

    def provider_changed(change: Any) -> None:
        models_for(change["new"])
        chosen()

    models_for(provider.value, current_model)
    provider.observe(provider_changed, names="value")
    model.observe(chosen, names="value")
    box = w.VBox([w.HBox([provider, model]), state])
    box.provider = provider
    box.model = model
    box.status = state
    in_use = f"{kind}:{model.value}" if kind and model.value else kind
    box.value = in_use
    if in_use:
        reason = f" ({escape(why)})" if why else ""
        state.value = f"<small>%llm uses <code>{escape(in_use)}</code>{reason}.</small>"
    else:
        state.value = "<small>%llm uses the configured default.</small>"
    opening = False
    return box


# -- context_preview -----------------------------------------------------------------
_STATUS = {
    "kept": Mark("\u25cf", "kept", "ok"),  # ●
    "dropped": Mark("\u25cb", "dropped", "idle"),  # ○
    "summarised": Mark("\u25d0", "summarised", "warn"),  # ◐
}


def context_preview(chat: Any, *, max_budget: int | None = None) -> Any:
    """Strategy selector and budget slider over a chat; each message kept/dropped/summarised.

    ``chat`` is a ``Chat``, a ``ContextWindowManager`` or the name of a ``%llm --chat``.
    The slider starts at ``min_budget`` (system prompt + newest turn: below it no strategy
    can fit the chat) and ends where nothing is dropped, or at ``max_budget``.
    """
    w = _w()
    manager = _manager_of(chat)
    least = manager.min_budget
    top = max(max_budget or max(manager.budget, manager.count()), least)
    strategy = w.Dropdown(
        options=["recent", "sliding_window", "summarization"],
        value=manager.strategy,
        description="strategy",
    )
    budget = w.IntSlider(
        value=min(max(manager.budget, least), top),
        min=least,
        max=top,
        description="budget",
        continuous_update=True,
    )
    table = w.HTML()
    summary = w.HTML()

    def render(*_: Any) -> None:
        least = manager.min_budget  # the chat may have grown since the slider was made
        if budget.min != least:
            budget.max = max(budget.max, least)
            budget.min = least  # moves a smaller value up to it (and renders that)
        try:
            preview = manager.preview(strategy=strategy.value, budget=budget.value)
        except Exception as exc:  # noqa: BLE001 - shown in the widget, not raised into the UI loop
            table.value = ""
            summary.value = f"<small>{escape(one_line(str(exc)) or type(exc).__name__)}</small>"
            return
        rows = [
            (e.index, e.role, e.tokens, _STATUS.get(e.status, e.status), e.text)
            for e in preview.entries
        ]
        columns: list[str | Column] = ["#", "role", "tokens", "status", Column("text", wide=True)]
        table.value = tables.html(columns, rows)
        label = "exact" if getattr(preview, "exact", True) else "estimated"
        over = " · over budget" if preview.total_tokens > preview.budget else ""
        summary.value = (
            f"<small>{preview.total_tokens:,} of {preview.budget:,} tokens ({label}){over} · "
            f"kept {preview.count('kept')}, dropped {preview.count('dropped')}, "
            f"summarised {preview.count('summarised')}</small>"
        )
        box.preview = preview

    box = w.VBox([w.HBox([strategy, budget]), table, summary])
    box.strategy = strategy
    box.budget = budget
    box.table = table
    box.summary = summary
    strategy.observe(render, names="value")
    budget.observe(render, names="value")
    render()
    return box


def _manager_of(chat: Any) -> Any:
    if isinstance(chat, str):
        magics = _magics()
        chats = magics.state.chats if magics is not None else {}
        if chat not in chats:
            raise KeyError(f"No %llm chat named {chat!r}; start one with %%llm --chat {chat}.")
        chat = chats[chat]
    manager = getattr(chat, "manager", chat)
    if not hasattr(manager, "preview"):
        raise TypeError(
            f"context_preview() takes a Chat, a ContextWindowManager or a chat name, "
            f"not {type(chat).__name__}."
        )
    return manager


# -- health_panel --------------------------------------------------------------------
def health_panel(*, connections: bool = True, caches: bool = True) -> Any:
    """Health of every configured connection and the cache backends, with a refresh button.

    The panel is drawn at once, every row ``checking…``; each row fills in as its check
    returns (the checks run on nbinfra's loop, the kernel is not blocked)."""
    from nbinfra.notebook.health_widget import panel

    return panel(_w(), connections=connections, caches=caches)
