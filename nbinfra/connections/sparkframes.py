"""Spark results as Arrow, pandas and rows; notebook DataFrames as Spark DataFrames.

A statement's rows are collected once, as an Arrow table (``DataFrame.toArrow()``); with
a ``limit`` only ``limit + 1`` rows are collected (``DataFrame.limit``), the extra one
telling ``truncated``. ``SparkResult.df()`` converts that table to pandas with PySpark's
own converters, so the frame is the one ``toPandas()`` would give, without running the
query again; ``arrow()`` returns the table; ``rows`` are made from it on first access.

A command with no output columns (CREATE, INSERT...) has run when ``spark.sql`` returns;
on a classic session the rows it wrote are read from the write's metrics
(``numOutputRows``) as the rows affected. Spark Connect reports none.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

from nbinfra.connections.types import QueryResult
from nbinfra.errors import QueryError

__all__ = ["SparkResult", "collect", "quiet_pandas", "to_pandas", "to_spark"]


class SparkResult(QueryResult):
    """Rows held as an Arrow table; pandas and tuples are made on demand."""

    def __init__(
        self,
        table: Any,
        *,
        schema: Any = None,
        timezone: str | None = None,
        structs: str | None = None,
        truncated: bool = False,
        rowcount: int | None = None,
    ) -> None:
        self._table = table
        self._schema = schema  # the Spark schema, for pandas conversion
        self._timezone = timezone
        self._structs = structs
        self._rows: list[tuple[Any, ...]] | None = None
        self.columns = list(table.column_names) if table is not None else []
        self.elapsed = 0.0
        self.statement = None
        self.truncated = truncated
        self.native = None
        self.rowcount = rowcount if rowcount is not None else len(self)

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        if self._rows is None:
            table = self._table
            self._rows = (
                []
                if table is None
                else list(zip(*(c.to_pylist() for c in table.columns), strict=True))
            )
        return self._rows

    @rows.setter
    def rows(self, value: list[tuple[Any, ...]]) -> None:
        self._rows = value

    def head(self, n: int) -> list[tuple[Any, ...]]:
        """The first ``n`` rows, converted from the Arrow table alone."""
        if self._rows is not None or self._table is None:
            return list(self.rows[:n])
        part = self._table.slice(0, n)
        return list(zip(*(c.to_pylist() for c in part.columns), strict=True))

    def __len__(self) -> int:
        return 0 if self._table is None else int(self._table.num_rows)

    def df(self) -> Any:
        """A pandas DataFrame, as ``toPandas()`` gives it (a fresh frame each call)."""
        if self._table is None:
            import pandas as pd

            return pd.DataFrame()
        return to_pandas(self._table, self._schema, self._timezone, self._structs)

    def arrow(self) -> Any:
        """The pyarrow Table the rows were collected as (shared, not copied)."""
        if self._table is None:
            import pyarrow as pa

            return pa.table({})
        return self._table

    def __repr__(self) -> str:
        return (
            f"<SparkResult {len(self)} rows x {len(self.columns)} columns "
            f"{self.columns[:8]!r} in {self.elapsed * 1000:.1f} ms>"
        )


def collect(frame: Any, limit: int | None, *, classic: bool) -> SparkResult:
    """Run ``frame``'s action once and hold its rows (at most ``limit``)."""
    schema = frame.schema
    if not schema.fields:  # a command: it has run already
        return SparkResult(None, rowcount=_written(frame) if classic else None)
    if limit is not None:
        frame = frame.limit(limit + 1)  # one extra row says it was truncated
    with quiet_pandas():
        table = frame.toArrow()
    truncated = limit is not None and table.num_rows > limit
    if truncated:
        table = table.slice(0, limit)
    conf = frame.sparkSession.conf
    return SparkResult(
        table,
        schema=schema,
        timezone=conf.get("spark.sql.session.timeZone"),
        structs=conf.get("spark.sql.execution.pandas.structHandlingMode", "legacy"),
        truncated=truncated,
    )


def _written(frame: Any) -> int | None:
    """Rows written by the command behind ``frame`` (its ``numOutputRows`` metric)."""
    with contextlib.suppress(Exception):
        plan = frame._jdf.queryExecution().executedPlan()
        if plan.getClass().getSimpleName() == "CommandResultExec":
            metric = plan.commandPhysicalPlan().metrics().get("numOutputRows")
            if metric.isDefined():
                return int(metric.get().value())
    return None


@contextlib.contextmanager
def quiet_pandas() -> Iterator[None]:
    """Without PySpark's warning that pandas 3 is "not yet fully supported", nor pandas'
    deprecation warnings about PySpark's own calls (each conversion would repeat them; the
    conversions used here are tested on pandas 3)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "PySpark does not yet fully support", FutureWarning)
        for category in (FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", category=category, module=r"pyspark\.")
        yield


def to_pandas(table: Any, schema: Any, timezone: str | None, structs: str | None = None) -> Any:
    """``table`` as pandas, column by column through PySpark's own converters (``structs``:
    the session's ``spark.sql.execution.pandas.structHandlingMode``)."""
    with quiet_pandas():
        return _to_pandas(table, schema, timezone, structs)


def _to_pandas(table: Any, schema: Any, timezone: str | None, structs: str | None) -> Any:
    import pandas as pd

    if schema is not None:
        try:  # PySpark 4.1+: the helper toPandas() itself calls
            from pyspark.sql.pandas.conversion import _convert_arrow_table_to_pandas
        except ImportError:
            pass
        else:
            return _convert_arrow_table_to_pandas(
                table, schema, timezone=timezone, struct_handling_mode=structs, date_as_object=True
            )
    from pyspark.sql.pandas.types import _create_converter_to_pandas

    names = list(table.column_names)
    plain = table.rename_columns([f"col_{i}" for i in range(len(names))])
    frame = plain.to_pandas(date_as_object=True, coerce_temporal_nanoseconds=True)
    if schema is None:
        frame.columns = names
        return frame
    columns = [
        _create_converter_to_pandas(
            field.dataType,
            field.nullable,
            timezone=timezone,
            struct_in_pandas="dict" if structs in (None, "legacy") else structs,
            error_on_duplicated_field_names=structs == "legacy",
        )(series)
        for (_, series), field in zip(frame.items(), schema.fields, strict=True)
    ]
    out = pd.concat(columns, axis="columns") if columns else pd.DataFrame(index=frame.index)
    out.columns = names
    return out


def to_spark(spark: Any, frame: object, name: str) -> Any:
    """A notebook DataFrame (pandas, Polars, Arrow, or Spark's own) as a Spark DataFrame."""
    if hasattr(frame, "createOrReplaceTempView"):
        return frame  # a Spark DataFrame already
    root = type(frame).__module__.split(".")[0]
    if root == "polars":
        collect_ = getattr(frame, "collect", None)
        if callable(collect_) and not hasattr(frame, "to_arrow"):
            frame = collect_()  # a LazyFrame
        frame = frame.to_arrow()  # type: ignore[attr-defined]
        root = "pyarrow"
    if root == "pyarrow":
        import pyarrow as pa

        if isinstance(frame, pa.RecordBatch):
            frame = pa.Table.from_batches([frame])
        if isinstance(frame, pa.Table):
            with quiet_pandas():
                return spark.createDataFrame(frame)
    if root == "pandas":
        with quiet_pandas():
            return spark.createDataFrame(frame)
    raise QueryError(
        f"{name} is a {type(frame).__name__}; Spark SQL reads pandas, Polars and Arrow "
        "DataFrames (and Spark's own) by name."
    )
