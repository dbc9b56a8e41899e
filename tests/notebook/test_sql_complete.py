"""Tab inside a %%conn cell offers the engine's tables and columns (through the real
shell's completer, as a kernel answers), read again after DDL, never opening a server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.completer import provisionalcompleter

from nbinfra.connections import conn
from nbinfra.session import Session, use_session
from tests.notebook.conftest import TestingShell

ORIGIN = "nbinfra.magics"


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    res = tmp_path / "resources"
    res.mkdir()
    (res / "application-db.yaml").write_text(
        "connections:\n  duckdb:\n    database: ':memory:'\n"
        f"  shop:\n    kind: sql\n    url: 'sqlite:///{tmp_path / 'shop.db'}'\n"
        "  warehouse:\n    kind: postgres\n    url: postgresql://u@127.0.0.1:1/w\n"
    )
    for name in ("vector", "external"):
        (res / f"application-{name}.yaml").write_text("connections: {}\n")
    monkeypatch.chdir(tmp_path)
    fresh = Session(resources=res)
    with use_session(fresh):
        yield fresh
    fresh.close()


def tab(ip: TestingShell, text: str) -> list[tuple[str, str]]:
    """``(text, type)`` of nbinfra's completions at the end of ``text``, each replacing
    exactly the fragment being typed (after a ``.``: the part after it)."""
    with provisionalcompleter():
        found = [c for c in ip.Completer.completions(text, len(text)) if c._origin == ORIGIN]
    tail = text.rsplit("\n", 1)[-1]
    word = tail.split()[-1].rpartition(".")[2] if tail and not tail[-1].isspace() else ""
    for c in found:
        assert (c.start, c.end) == (len(text) - len(word), len(text)), (text, c)
    return [(c.text, c.type) for c in found]


def test_columns_and_tables_of_duckdb_after_ddl(ip: TestingShell, configured: Session) -> None:
    ip.cell("%%conn duckdb\nCREATE TABLE orders (order_id INT, amount DOUBLE, placed DATE)")
    assert tab(ip, "%%conn duckdb\nSELECT * FROM ord") == [("orders", "table")]
    assert tab(ip, "%%conn duckdb\nSELECT pla") == [("placed", "column")]
    assert tab(ip, "%%conn duckdb\nSELECT orders.am") == [("amount", "column")]
    assert tab(ip, "%%conn duckdb\nSELECT * FROM orders\nWHERE order") == [
        ("order_id", "column"),
        ("orders", "table"),
    ]
    # DDL in a later cell: the next Tab reads the catalogue again
    ip.cell("%%conn duckdb\nALTER TABLE orders ADD COLUMN amount_tax DOUBLE")
    assert tab(ip, "%%conn duckdb\nSELECT amount FROM orders WHERE amo") == [
        ("amount", "column"),
        ("amount_tax", "column"),
    ]
    ip.cell("%%conn duckdb\nDROP TABLE orders")
    assert tab(ip, "%%conn duckdb\nSELECT * FROM ord") == []


def test_the_sql_kind_on_sqlite(ip: TestingShell, configured: Session) -> None:
    ip.cell("%%conn shop\nCREATE TABLE customers (customer_id INTEGER, region TEXT)")
    assert tab(ip, "%%conn shop -o x\nSELECT reg") == [("region", "column")]
    assert tab(ip, "%%conn shop\nSELECT * FROM cus") == [("customers", "table")]
    assert tab(ip, "%%conn duckdb\nSELECT * FROM cus") == []  # another connection's table


def test_a_tab_opens_no_connection(ip: TestingShell, configured: Session) -> None:
    warehouse = conn("warehouse")
    assert tab(ip, "%%conn warehouse\nSELECT * FROM t") == []
    assert not warehouse.manager.connected
    # a half-typed first line, a sub-command line: nothing, and no traceback
    assert tab(ip, "%%conn --lim\nSELECT a") == []
    assert tab(ip, "%%conn duckdb --plot\nSELECT a") == []
