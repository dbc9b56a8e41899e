"""A real Jupyter kernel (jupyter_client) interrupted during a long DuckDB query.

What JupyterLab does: the kernel gets SIGINT while ``%conn duckdb SELECT ...`` runs. The
cell ends with one line, few output messages went out meanwhile (no DuckDB progress
widget flooding the channel), and the next cell runs.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LONG = "SELECT sum(hash(range)) FROM range(10000000000)"


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Any]:
    manager_module = pytest.importorskip("jupyter_client.manager")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.pop("NBINFRA_PROGRESS", None)  # the kernel's own default: drawn in a kernel
    env["NBINFRA_RESOURCES"] = str(_resources(tmp_path))
    km, client = manager_module.start_new_kernel(
        kernel_name="python3", cwd=str(tmp_path), env=env, startup_timeout=120
    )
    try:
        yield km, client
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)


def _resources(folder: Path) -> Path:
    res = folder / "resources"
    res.mkdir()
    (res / "application-db.yaml").write_text(
        "default_connection: duckdb\nconnections:\n  duckdb:\n    database: ':memory:'\n"
    )
    (res / "application-vector.yaml").write_text("connections: {}\n")
    (res / "application-external.yaml").write_text("connections: {}\n")
    return res


def _run(client: Any, code: str, timeout: float = 60) -> tuple[dict[str, Any], list[Any]]:
    """Execute ``code``; the reply and every output message of that cell."""
    msg_id = client.execute(code)
    reply = client.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = client.get_shell_msg(timeout=timeout)
    return reply, _outputs(client, msg_id, timeout)


def _outputs(client: Any, msg_id: str, timeout: float) -> list[Any]:
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = client.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return out
        out.append(msg)
    raise AssertionError(f"no idle status within {timeout} s")


@pytest.mark.timeout(300)
def test_kernel_interrupt_of_a_long_duckdb_query(kernel: Any) -> None:
    km, client = kernel
    reply, _ = _run(client, "%load_ext nbinfra\n%conn duckdb SELECT 1")
    assert reply["content"]["status"] == "ok"

    msg_id = client.execute(f"%conn duckdb {LONG}")
    time.sleep(2.5)  # running, and past the 0.5 s after which progress is shown
    km.interrupt_kernel()
    reply = client.get_shell_msg(timeout=60)  # the query alone would run for minutes
    outputs = _outputs(client, msg_id, 60)
    content = reply["content"]
    assert content["status"] == "error", content
    assert content["traceback"] == ["Interrupted: the query was cancelled in DuckDB"], content
    types = [m["msg_type"] for m in outputs]
    assert "comm_open" not in types  # no DuckDB ipywidgets progress bar
    # nbinfra's own display: one output, at most ~10 updates a second, then removed
    displays = [m for m in outputs if m["msg_type"] in ("display_data", "update_display_data")]
    assert displays and len(displays) <= 2 + 10 * 3, len(displays)
    assert displays[0]["content"]["data"]["text/plain"].startswith("duckdb: query: ")
    assert displays[-1]["msg_type"] == "update_display_data"
    assert displays[-1]["content"]["data"]["text/plain"] == ""
    errors = [m for m in outputs if m["msg_type"] == "error"]
    assert [e["content"]["traceback"] for e in errors] == [
        ["Interrupted: the query was cancelled in DuckDB"]
    ]
    assert not [m for m in outputs if m["msg_type"] == "stream"]  # nothing else printed

    reply, outputs = _run(client, "%conn duckdb SELECT 41 + 1 AS answer\n_conn.rows")
    assert reply["content"]["status"] == "ok"
    results = [m for m in outputs if m["msg_type"] == "execute_result"]
    assert results and results[-1]["content"]["data"]["text/plain"] == "[(42,)]"
