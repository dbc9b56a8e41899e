"""Saved and composed queries (``%%conn NAME --save X``, ``%conn saved``) through a real
IPython shell, on DuckDB and on SQLite through the sql kind."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.error import UsageError

from nbinfra.session import Session
from tests.notebook.conftest import TestingShell


def test_saved_queries_compose_in_dependency_order(
    ip: TestingShell, nbinfra_session: Session
) -> None:
    ip.cell("%%conn duckdb\nCREATE TABLE ev AS SELECT i, i % 3 AS k FROM range(10) r(i)")
    assert (
        ip.cell("%%conn duckdb --save recent --no-execute\nSELECT * FROM ev WHERE i >= 4") is None
    )
    kept = ip.cell("%%conn duckdb --save odd\nSELECT * FROM recent WHERE i % 2 = 1")
    assert sorted(kept.rows) == [(5, 2), (7, 1), (9, 0)]  # ran too: recent composed first
    result = ip.cell(
        "%%conn duckdb\nSELECT count(*) AS n, 'recent' AS s FROM odd -- recent in a comment"
    )
    assert result.rows == [(3, "recent")]
    # a query with its own WITH keeps it, after the saved CTEs
    own = ip.cell("%%conn duckdb\nWITH two AS (SELECT * FROM odd LIMIT 2) SELECT count(*) FROM two")
    assert own.rows == [(2,)]
    # a qualified name is the real table, not the saved query
    ip.cell("%%conn duckdb\nCREATE TABLE recent AS SELECT 42 AS i")
    assert ip.cell("%%conn duckdb\nSELECT i FROM main.recent").rows == [(42,)]
    assert ip.cell("%%conn duckdb\nSELECT count(*) FROM recent").rows == [(6,)]
    listing = ip.run_line_magic("conn", "saved")
    assert listing.rows == [
        ("odd", "duckdb", "SELECT * FROM recent WHERE i % 2 = 1"),
        ("recent", "duckdb", "SELECT * FROM ev WHERE i >= 4"),
    ]
    ip.run_line_magic("conn", "saved --delete recent")
    assert [row[0] for row in ip.run_line_magic("conn", "saved").rows] == ["odd"]


def test_a_cycle_and_bad_saves_are_one_line(ip: TestingShell, nbinfra_session: Session) -> None:
    ip.cell("%%conn duckdb --save a --no-execute\nSELECT 1 AS x")
    ip.cell("%%conn duckdb --save b --no-execute\nSELECT * FROM a")
    with pytest.raises(UsageError, match=r"Saved queries form a cycle: a -> b -> a"):
        ip.cell("%%conn duckdb --save a --no-execute\nSELECT * FROM b")
    assert ip.cell("%%conn duckdb\nSELECT * FROM b").rows == [(1,)]  # the old a is kept
    with pytest.raises(UsageError, match="one SELECT query"):
        ip.cell("%%conn duckdb --save c\nCREATE TABLE z (i INT)")
    with pytest.raises(UsageError, match="one SELECT query"):
        ip.cell("%%conn duckdb --save c\nSELECT 1; SELECT 2")
    ip.cell("%%conn duckdb --save order --no-execute\nSELECT 7 AS x")  # a keyword, quoted
    assert ip.cell('%%conn duckdb\nSELECT x FROM "order"').rows == [(7,)]
    with pytest.raises(UsageError, match="goes with --save"):
        ip.cell("%%conn duckdb --no-execute\nSELECT 1")
    with pytest.raises(UsageError, match="No saved query named 'nope'"):
        ip.run_line_magic("conn", "saved --delete nope")


def test_saved_on_sqlite_per_connection(
    ip: TestingShell, nbinfra_session: Session, tmp_path: Path
) -> None:
    url = f"sql:sqlite:///{tmp_path / 's.db'}"
    ip.cell(f"%%conn {url}\nCREATE TABLE t (v INTEGER, s TEXT)")
    ip.cell(f"%%conn {url}\nINSERT INTO t VALUES (1, 'big'), (5, 'big'), (9, 'x')")
    ip.cell(f"%%conn {url} --save big --no-execute\nSELECT * FROM t WHERE v > 2")
    result = ip.cell(f"%%conn {url}\nSELECT count(*), 'big' FROM big WHERE s = 'big'")
    assert result.rows == [(1, "big")]
    # saved per connection: DuckDB knows no "big"
    with pytest.raises(Exception, match="big"):
        ip.cell("%%conn duckdb\nSELECT * FROM big")
