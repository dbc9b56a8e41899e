"""DataFrames queried by name: which notebook objects count as one, without importing them.

``%%conn duckdb SELECT * FROM df`` reads the pandas, Polars or Arrow object ``df`` from the
notebook. The magic asks the kind which names the statement reads as tables (its own
parser: ``ConnectionManager.table_names``), looks each up among the notebook's variables
and hands over those that are DataFrame-like (``frames_for``); the manager makes them
visible to that one statement (``sql(..., frames=...)``; a multi-statement cell goes to
``execute_script(..., frames=...)`` when the kind has one).

The test is on the type's module and name, walking its MRO (subclasses such as a
GeoDataFrame count), so deciding imports neither pandas, Polars nor pyarrow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

__all__ = ["FRAME_TYPES", "FrameLookup", "frames_for", "is_frame", "not_a_frame"]

# (top-level package, class name) of the objects a kind may query by name.
FRAME_TYPES: frozenset[tuple[str, str]] = frozenset(
    {
        ("pandas", "DataFrame"),
        ("polars", "DataFrame"),
        ("polars", "LazyFrame"),
        ("pyarrow", "Table"),
        ("pyarrow", "RecordBatch"),
        ("pyarrow", "RecordBatchReader"),
        ("pyarrow", "Dataset"),
    }
)


def is_frame(obj: object) -> bool:
    """True for a pandas or Polars DataFrame, a Polars LazyFrame, or a pyarrow Table,
    RecordBatch, RecordBatchReader or Dataset (or a subclass of one)."""
    for cls in type(obj).__mro__:
        package = cls.__module__.partition(".")[0]
        if (package, cls.__name__) in FRAME_TYPES:
            return True
    return False


def not_a_frame(name: str, obj: object) -> str:
    """The one line saying that variable ``name`` cannot be queried as a table."""
    cls = type(obj)
    module = cls.__module__.partition(".")[0]
    kind = cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    return (
        f"{name} is {article} {kind}, not a DataFrame: only pandas/Polars DataFrames and "
        "Arrow tables are queried by name"
    )


class FrameLookup(NamedTuple):
    """What ``frames_for`` found: the frames to pass, and variables of the wrong type."""

    frames: dict[str, Any]
    mistyped: dict[str, str]  # name -> the one line ``not_a_frame`` says of it


def frames_for(names: Iterable[str], namespace: Mapping[str, Any]) -> FrameLookup:
    """The DataFrame-like variables among ``names`` in ``namespace``.

    A name with no variable is left out (it is a table, or the engine says it is missing);
    so is one whose variable is something else (a list, a string), which is reported in
    ``mistyped`` so that a "table does not exist" error can say why.
    """
    frames: dict[str, Any] = {}
    mistyped: dict[str, str] = {}
    for name in names:
        if name not in namespace:
            continue
        value = namespace[name]
        if is_frame(value):
            frames[name] = value
        else:
            mistyped[name] = not_a_frame(name, value)
    return FrameLookup(frames, mistyped)
