"""Plots: aggregates computed in the engine (``plot_query``), or from rows already pulled
(``plot_result``, ``QueryResult.plot``), drawn with matplotlib (``pip install
'nbinfra[plot]'``; imported on first use, never by ``import nbinfra``).

``plot_query(conn, query, kind, columns)`` wraps ``query`` as a subquery and asks the
engine only for what is drawn (see connections/plotsql.py): a 100M-row table's histogram
fetches its bins. ``PlotData`` keeps those numbers and how many rows came back; the
figure carries it as ``figure.nbinfra_plot``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from nbinfra.connections.plotsql import QUARTILES, PlotSQL
from nbinfra.connections.profile import RunsSQL
from nbinfra.connections.types import QueryResult
from nbinfra.errors import QueryError

__all__ = ["KINDS", "PlotData", "draw", "plot_query", "plot_result"]

KINDS = ("bar", "box", "hist", "line", "scatter")
PLOT_HINT = "pip install 'nbinfra[plot]'"
BINS = 20
CAP = 10_000  # rows at most for line and scatter; groups at most for bar: 50
BAR_CAP = 50
WHIS = 1.5  # Tukey's whiskers, matplotlib's default
FLIERS = 1_000  # fliers drawn one by one at most


@dataclass
class PlotData:
    """What a plot draws: ``x``/``y`` series (hist: bin edges and counts; box: the five
    numbers per column) and the rows the engine sent back for it."""

    kind: str
    columns: list[str]
    x: list[Any] = field(default_factory=list)
    y: list[Any] = field(default_factory=list)
    boxes: list[dict[str, Any]] = field(default_factory=list)
    rows_fetched: int = 0
    statements: list[str] = field(default_factory=list)


def _arity(kind: str, columns: list[str]) -> None:
    if kind not in KINDS:
        raise QueryError(f"Unknown plot {kind!r}: use one of {', '.join(KINDS)}.")
    need = {"hist": (1, 1), "box": (1, 8), "bar": (1, 2), "line": (2, 2), "scatter": (2, 2)}
    low, high = need[kind]
    if not low <= len(columns) <= high:
        what = {"hist": "COL", "box": "COL...", "bar": "X [Y]", "line": "X Y", "scatter": "X Y"}
        raise QueryError(f"--plot {kind} takes {what[kind]}; got {len(columns)} column(s).")


class _Session:
    """Runs the plot's statements on ``conn`` and counts the rows they return."""

    def __init__(self, conn: RunsSQL, params: Any, data: PlotData, frames: Any = None) -> None:
        self.conn, self.params, self.data, self.frames = conn, params, data, frames

    def rows(self, statement: str) -> list[tuple[Any, ...]]:
        extra = {"frames": self.frames} if self.frames else {}
        result = self.conn.sql(statement, self.params, **extra)
        self.data.rows_fetched += len(result.rows)
        self.data.statements.append(statement)
        return result.rows


def _float(value: Any) -> float:
    return float(value)


def plot_data(
    conn: RunsSQL,
    query: str,
    kind: str,
    columns: list[str],
    *,
    dialect: str | None,
    params: Any = None,
    bins: int = BINS,
    cap: int = CAP,
    frames: Any = None,
) -> PlotData:
    """The numbers of a ``kind`` plot of ``query``'s ``columns``, computed in the engine."""
    _arity(kind, columns)
    if bins < 1:
        raise QueryError("--bins must be 1 or more.")
    gen = PlotSQL(dialect)
    data = PlotData(kind, list(columns))
    run = _Session(conn, params, data, frames)
    if kind == "hist":
        low, high, count = run.rows(gen.range_sql(query, columns[0]))[0]
        if not count:
            return data
        low, high = _float(low), _float(high)
        if not (math.isfinite(low) and math.isfinite(high)):
            raise QueryError(
                f"{columns[0]!r} holds infinite or NaN values ({low} to {high}): filter them "
                "out in the query to draw a histogram."
            )
        data.x = _edges(low, high, bins)
        data.y = _counts(run, gen, query, columns[0], data.x, (low, high))
    elif kind == "box":
        for column in columns:
            data.boxes.append(_box(run, gen, query, column))
    elif kind == "bar":
        y = columns[1] if len(columns) > 1 else None
        for x, value in run.rows(gen.bar_sql(query, columns[0], y, BAR_CAP)):
            data.x.append(x)
            data.y.append(_float(value) if value is not None else 0.0)
    else:
        total = int(run.rows(gen.count_sql(query))[0][0])
        if kind == "line":
            statement = gen.line_sql(query, columns[0], columns[1], math.ceil(total / cap))
        else:
            # about cap rows, under it by 3 sigma, so LIMIT (which would favour the rows
            # scanned first) almost never cuts the sample
            fraction = min(1.0, cap / total * (1 - 3 / math.sqrt(cap))) if total else 1.0
            statement = gen.scatter_sql(query, columns[0], columns[1], fraction, cap)
        for x, y in run.rows(statement):
            data.x.append(x)
            data.y.append(y)
    return data


def _edges(low: float, high: float, bins: int) -> list[float]:
    """numpy.histogram's bin edges over ``[low, high]`` (``linspace``: ``i * step + low``,
    the last edge ``high`` itself); ``bins`` unit-wide bins from ``low`` when all values
    are equal."""
    if high <= low:
        return [low + i for i in range(bins + 1)]
    step = (high - low) / bins
    return [i * step + low for i in range(bins)] + [high]


def _counts(
    run: _Session,
    gen: PlotSQL,
    query: str,
    column: str,
    edges: list[float],
    span: tuple[float, float],
) -> list[int]:
    """How many of ``column``'s values (from ``span[0]`` to ``span[1]``) fall in each bin
    that ``edges`` bound, computed in the engine."""
    bins = len(edges) - 1
    statement = gen.hist_bounds_sql(query, column, edges)
    if statement is not None:
        (values,) = run.rows(statement)[0]
        return [int(n) for n in values]
    counts = [0] * bins
    for index, n in run.rows(gen.hist_sql(query, column, bins, *span)):
        counts[int(index)] += int(n)
    return counts


def _box(run: _Session, gen: PlotSQL, query: str, column: str) -> dict[str, Any]:
    """matplotlib's ``bxp`` statistics of ``column``: quartiles, Tukey's whiskers and
    the fliers (at most ``FLIERS``; ``nfliers`` counts them all), each computed in SQL."""
    statement = gen.box_sql(query, column)
    if statement is not None:
        low, q1, med, q3, high, _count = (_float(v) for v in run.rows(statement)[0])
    else:
        # No quantile function (SQLite, MySQL): each quartile from the two values around it.
        low_v, high_v, count = run.rows(gen.range_sql(query, column))[0]
        if not count:
            raise QueryError(f"{column!r} has no values to draw a box of.")
        low, high = _float(low_v), _float(high_v)
        quartiles = []
        for q in QUARTILES:
            position = q * (int(count) - 1)
            below = math.floor(position)
            pair = [_float(row[0]) for row in run.rows(gen.nth_sql(query, column, below))]
            above = pair[1] if len(pair) > 1 else pair[0]
            quartiles.append(pair[0] + (above - pair[0]) * (position - below))
        q1, med, q3 = quartiles
    fence_low, fence_high = q1 - WHIS * (q3 - q1), q3 + WHIS * (q3 - q1)
    values: dict[str, Any] = {"q1": q1, "med": med, "q3": q3, "whislo": low, "whishi": high}
    values["fliers"], values["nfliers"] = [], 0
    if fence_low <= low and high <= fence_high:
        return values  # nothing outside the fences: the whiskers are min and max
    lo_in, hi_in, outside = run.rows(gen.fence_sql(query, column, fence_low, fence_high))[0]
    values["whislo"], values["whishi"] = _float(lo_in), _float(hi_in)
    values["nfliers"] = int(outside or 0)
    if values["nfliers"] <= FLIERS:
        statement = gen.fliers_sql(query, column, fence_low, fence_high, FLIERS)
        values["fliers"] = [_float(row[0]) for row in run.rows(statement)]
    else:  # too many to draw each: the two extremes keep the plot's range true
        values["fliers"] = [low, high]
    return values


def _figure() -> tuple[Any, Any]:
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        from nbinfra.errors import MissingDependencyError

        raise MissingDependencyError(
            f"matplotlib is not installed: {PLOT_HINT}", hint=PLOT_HINT
        ) from exc
    fig, ax = plt.subplots()
    plt.close(fig)  # shown once, as the cell's value, not again by the inline backend
    return fig, ax


def draw(data: PlotData) -> Any:
    """A matplotlib ``Figure`` of ``data`` (``figure.nbinfra_plot`` is ``data``)."""
    fig, ax = _figure()
    if data.kind == "hist":
        if data.y:  # one patch over the bins (matplotlib's way to draw counted bins)
            ax.stairs(data.y, data.x, fill=True)
        ax.set_xlabel(data.columns[0])
        ax.set_ylabel("count")
    elif data.kind == "box":
        stats = [dict(box, label=col) for box, col in zip(data.boxes, data.columns, strict=True)]
        ax.bxp(stats)
    elif data.kind == "bar":
        ax.bar([str(x) for x in data.x], data.y)
        ax.set_xlabel(data.columns[0])
        ax.set_ylabel(f"sum of {data.columns[1]}" if len(data.columns) > 1 else "count")
    else:
        (ax.plot if data.kind == "line" else ax.scatter)(data.x, data.y)
        ax.set_xlabel(data.columns[0])
        ax.set_ylabel(data.columns[1])
    fig.nbinfra_plot = data
    return fig


def plot_query(
    conn: Any,
    query: str,
    kind: str,
    columns: list[str],
    *,
    params: Any = None,
    bins: int = BINS,
    frames: Any = None,
) -> Any:
    """A ``Figure`` of ``query`` on ``conn`` (a ``nbinfra.conn(...)``) with the plot's
    aggregates computed in the engine; ``frames`` as in ``conn.sql`` (DuckDB, Spark)."""
    dialect = conn.manager.plot_sql().dialect
    data = plot_data(
        conn, query, kind, columns, dialect=dialect, params=params, bins=bins, frames=frames
    )
    return draw(data)


def plot_result(
    result: QueryResult, kind: str, x: str | None = None, y: str | None = None, *, bins: int = BINS
) -> Any:
    """A ``Figure`` of rows already pulled (``result.plot("hist", x="price")``)."""
    columns = [c for c in (x, y) if c is not None]
    _arity(kind, columns)
    for column in columns:
        if column not in result.columns:
            raise QueryError(f"No column {column!r} in the result: {', '.join(result.columns)}.")
    frame = result.df()
    fig, ax = _figure()
    if kind == "hist":
        ax.hist(frame[columns[0]].dropna(), bins=bins)
    elif kind == "box":
        ax.boxplot([frame[c].dropna() for c in columns], tick_labels=columns)
    elif kind == "bar":
        groups = frame.groupby(columns[0])
        values = groups[columns[1]].sum() if len(columns) > 1 else groups.size()
        ax.bar([str(v) for v in values.index], values.to_numpy())
    elif kind == "line":
        ordered = frame.sort_values(columns[0])
        ax.plot(ordered[columns[0]], ordered[columns[1]])
    else:
        ax.scatter(frame[columns[0]], frame[columns[1]])
    ax.set_xlabel(columns[0])
    return fig
