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
    with pytest.raises(UsageError, match="takes no -o"):
        ip.run_line_magic("conn", "-o x list")
