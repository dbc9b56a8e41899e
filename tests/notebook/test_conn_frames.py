"""``%%conn duckdb SELECT * FROM df``: notebook DataFrames read by name, in a real IPython
shell against real DuckDB, with no ``register`` call."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbinfra.errors import QueryError
from nbinfra.session import Session, use_session
from tests.notebook.conftest import TestingShell
from tests.pyrun import run_python

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pl = pytest.importorskip("polars")


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[Session]:
    (tmp_path / "application-db.yaml").write_text(
        "default_connection: duckdb\nconnections:\n  duckdb:\n    database: ':memory:'\n"
    )
    for part in ("vector", "external"):
        (tmp_path / f"application-{part}.yaml").write_text("connections: {}\n")
    fresh = Session(resources=tmp_path)
    with use_session(fresh):
        yield fresh
    fresh.close()


@pytest.mark.parametrize(
    "make",
    [
        lambda: pd.DataFrame({"k": [1, 2, 3], "v": ["a", "b", "c"]}),
        lambda: pl.DataFrame({"k": [1, 2, 3], "v": ["a", "b", "c"]}),
        lambda: pl.LazyFrame({"k": [1, 2, 3], "v": ["a", "b", "c"]}),
        lambda: pa.table({"k": [1, 2, 3], "v": ["a", "b", "c"]}),
    ],
    ids=["pandas", "polars", "polars-lazy", "arrow"],
)
def test_a_frame_is_queried_by_its_name(ip: TestingShell, duck: Session, make: object) -> None:
    ip.user_ns["df"] = make()  # type: ignore[operator]
    result = ip.cell("%%conn duckdb\nSELECT v FROM df WHERE k > 1 ORDER BY k")
    assert result.rows == [("b",), ("c",)]
    assert ip.cell("%conn duckdb SELECT count(*) FROM df").scalar() == 3  # the line form too


def test_two_frames_join_and_join_a_real_table(ip: TestingShell, duck: Session) -> None:
    ip.cell("%%conn\nCREATE TABLE names AS SELECT * FROM (VALUES (1, 'one'), (2, 'two')) t(k, n)")
    ip.user_ns["a"] = pd.DataFrame({"k": [1, 2], "x": [10, 20]})
    ip.user_ns["b"] = pl.DataFrame({"k": [2, 1], "y": [1.5, 0.5]})
    result = ip.cell(
        "%%conn\nSELECT n, x, y FROM a JOIN b USING (k) JOIN names USING (k) ORDER BY k"
    )
    assert result.rows == [("one", 10, 0.5), ("two", 20, 1.5)]


def test_output_binds_and_a_changed_frame_on_the_rerun(ip: TestingShell, duck: Session) -> None:
    ip.user_ns["df"] = pd.DataFrame({"k": range(10)})
    ip.user_ns["lo"] = 6
    cell = "%%conn duckdb -o res\nSELECT k FROM df WHERE k >= :lo ORDER BY k"
    ip.run_cell(cell)
    assert ip.user_ns["res"].df()["k"].tolist() == [6, 7, 8, 9]
    ip.user_ns["df"] = pd.DataFrame({"k": [7, 70]})  # a new frame under the same name
    ip.run_cell(cell)
    assert ip.user_ns["res"].df()["k"].tolist() == [7, 70]
    ip.run_cell("df.loc[0, 'k'] = 100")  # changed in place
    ip.run_cell(cell)
    assert ip.user_ns["res"].df()["k"].tolist() == [70, 100]


def test_a_cte_shadows_and_a_literal_or_comment_passes_nothing(
    ip: TestingShell, duck: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbinfra.connections.duckdb import DuckDBConnectionManager

    passed: list[list[str]] = []
    real = DuckDBConnectionManager.sql_sync

    def spy(self: DuckDBConnectionManager, *args: object, **kwargs: object) -> object:
        passed.append(sorted(kwargs.get("frames") or {}))  # type: ignore[call-overload]
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(DuckDBConnectionManager, "sql_sync", spy)
    ip.user_ns["df"] = pd.DataFrame({"k": [1]})
    assert ip.cell("%%conn\nWITH df AS (SELECT 42 AS k) SELECT k FROM df").rows == [(42,)]
    result = ip.cell("%%conn\nSELECT 'SELECT * FROM df' AS s -- FROM df\n/* JOIN df */")
    assert result.rows == [("SELECT * FROM df",)]
    assert ip.cell("%%conn\nSELECT k FROM df").rows == [(1,)]
    assert passed == [[], [], ["df"]]


def test_a_real_table_wins_over_a_variable(ip: TestingShell, duck: Session) -> None:
    ip.cell("%%conn\nCREATE TABLE df AS SELECT 100 AS k")
    ip.user_ns["df"] = pd.DataFrame({"k": [1]})
    assert ip.cell("%%conn\nSELECT k FROM df").rows == [(100,)]


def test_nothing_is_left_registered_after_the_cell(ip: TestingShell, duck: Session) -> None:
    import nbinfra

    ip.user_ns["df"] = pd.DataFrame({"k": [1, 2]})
    ip.cell("%%conn\nSELECT * FROM df")
    db = nbinfra.conn("duckdb")
    assert "df" not in db.tables() and db.registered() == []
    views = db.sql("SELECT count(*) FROM duckdb_views() WHERE view_name = 'df'")
    assert views.scalar() == 0
    with pytest.raises(QueryError, match="does not exist"):
        db.sql("SELECT * FROM df")  # the Python API passes frames explicitly


def test_a_script_reads_frames_in_each_statement(ip: TestingShell, duck: Session) -> None:
    ip.user_ns["df"] = pd.DataFrame({"k": [1, 2, 3]})
    ip.user_ns["other"] = pa.table({"k": [3]})
    ip.run_cell(
        "%%conn -o res\nCREATE TABLE t AS SELECT * FROM df;\n"
        "SELECT count(*) FROM t JOIN other USING (k)"
    )
    assert [r.scalar() for r in ip.user_ns["res"]] == [3, 1]


def test_a_missing_name_keeps_duckdbs_one_line(ip: TestingShell, duck: Session) -> None:
    with pytest.raises(QueryError) as info:
        ip.cell("%%conn\nSELECT * FROM nowhere")
    message = str(info.value)
    assert "Table with name nowhere does not exist" in message and "\n" not in message


def test_a_variable_of_the_wrong_type_is_named(ip: TestingShell, duck: Session) -> None:
    ip.user_ns["df"] = [1, 2, 3]
    with pytest.raises(QueryError) as info:
        ip.cell("%%conn\nSELECT * FROM df")
    message = str(info.value)
    assert "Table with name df does not exist" in message
    assert "df is a list, not a DataFrame" in message and "\n" not in message
    run = ip.shell.run_cell("%%conn\nSELECT * FROM df")  # shown as one line, no traceback
    assert run.error_in_exec is not None
    assert len(run.error_in_exec._render_traceback_()) == 1


def test_the_magic_and_the_type_test_import_nothing_heavy() -> None:
    code = (
        "import sys, json\n"
        "import nbinfra.notebook.conn_magic, nbinfra.connections.frames\n"
        "from nbinfra.connections.frames import frames_for\n"
        "frames_for(['df'], {'df': [1]})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    heavy = {"pandas", "polars", "pyarrow", "numpy", "duckdb"}
    assert [m for m in loaded if m.split(".")[0] in heavy] == []
    assert "nbinfra.connections.frames" in loaded
