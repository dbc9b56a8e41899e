"""``%conn profile NAME TABLE`` through a real IPython shell."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from nbinfra.session import Session
from tests.notebook.conftest import TestingShell


def test_profile_keeps_its_table_with_o(ip: TestingShell, nbinfra_session: Session) -> None:
    ip.cell(
        '%%conn duckdb\nCREATE TABLE "odd t" AS SELECT i AS "select", '
        "CASE WHEN i % 4 = 0 THEN NULL ELSE 'w' || (i % 3) END AS \"my col\" FROM range(12) r(i)"
    )
    result = ip.run_line_magic("conn", "profile duckdb 'odd t' -o prof")
    assert ip.user_ns["prof"] is result
    rows = {row[0]: row for row in result.rows}
    assert rows["select"][2:9] == (12, 0, 12, 0, 11, 5.5, pytest.approx(3.605551275))
    # i in 1,2,3,5,6,7,9,10,11 -> i % 3: w1 x3, w2 x3, w0 x3
    assert rows["my col"][2:5] == (9, 3, 3) and rows["my col"][9] == "w0 (3), w1 (3), w2 (3)"


def test_profile_usage_errors(ip: TestingShell, nbinfra_session: Session) -> None:
    with pytest.raises(UsageError, match="Usage: %conn profile NAME TABLE"):
        ip.run_line_magic("conn", "profile duckdb")
    with pytest.raises(UsageError, match="no connection named 'nope'"):
        ip.run_line_magic("conn", "profile nope t")
    with pytest.raises(UsageError, match="takes no --limit"):
        ip.run_line_magic("conn", "--limit 3 profile duckdb t")
    with pytest.raises(UsageError, match="takes no --limit"):
        ip.run_line_magic("conn", "profile duckdb t --plot hist v")
    with pytest.raises(UsageError, match="takes no -o"):
        ip.run_line_magic("conn", "-o x list")


def test_plot_hist_in_the_engine_and_o_keeps_the_figure(
    ip: TestingShell, nbinfra_session: Session
) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    np = pytest.importorskip("numpy")
    matplotlib.use("Agg")
    ip.cell(
        '%%conn duckdb\nCREATE TABLE m AS SELECT (i * 37) % 101 AS "my v" FROM range(5000) r(i)'
    )
    ip.user_ns["top"] = 90
    fig = ip.cell(
        '%%conn duckdb --plot hist "my v" --bins 9 -o fig\nSELECT * FROM m WHERE "my v" < :top'
    )
    assert ip.user_ns["fig"] is fig
    values = [(i * 37) % 101 for i in range(5000)]
    counts = np.histogram([v for v in values if v < 90], bins=9)[0].tolist()
    assert fig.nbinfra_plot.y == counts and fig.nbinfra_plot.rows_fetched == 2  # range, bins
    assert ip.cell('%%conn duckdb --plot bar "my v"\nSELECT * FROM m').nbinfra_plot.y[0] == 50


def test_plot_usage_errors(ip: TestingShell, nbinfra_session: Session) -> None:
    with pytest.raises(UsageError, match="name the columns to plot"):
        ip.cell("%%conn duckdb --plot hist\nSELECT 1 AS v")
    with pytest.raises(UsageError, match="--plot is for a %%conn cell"):
        ip.run_line_magic("conn", "--plot hist duckdb SELECT 1")
    with pytest.raises(UsageError, match="one query in the cell"):
        ip.cell("%%conn duckdb --plot hist v\nSELECT 1 AS v; SELECT 2 AS v")
    with pytest.raises(UsageError, match="--plot pie: use one of bar, box, hist, line, scatter"):
        ip.cell("%%conn duckdb --plot pie v\nSELECT 1 AS v")


def test_profile_and_plot_a_dataframe_by_name(ip: TestingShell, nbinfra_session: Session) -> None:
    pd = pytest.importorskip("pandas")
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    ip.user_ns["sales"] = pd.DataFrame({"price": [1.0, 2.0, 2.0, None], "who": list("abba")})
    rows = {row[0]: row for row in ip.run_line_magic("conn", "profile duckdb sales").rows}
    assert rows["price"][2:8] == (3, 1, 2, 1.0, 2.0, pytest.approx(5 / 3))
    assert rows["who"][9] == "a (2), b (2)"
    fig = ip.cell("%%conn duckdb --plot bar who\nSELECT * FROM sales")
    assert fig.nbinfra_plot.x == ["a", "b"] and fig.nbinfra_plot.y == [2.0, 2.0]
    assert "sales" not in ip.cell("%%conn duckdb\nSHOW TABLES").df().to_numpy().ravel().tolist()
