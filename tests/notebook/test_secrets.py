"""A sentinel placed in every credential never shows in any output, error or widget state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.utils.capture import capture_output

from nbinfra.session import Session, use_session
from nbinfra.testing import free_port
from tests.notebook.conftest import TestingShell

SENTINEL = "S3NT1NEL-do-not-print-7f3a"


@pytest.fixture
def secret_session(tmp_path: Path) -> Iterator[Session]:
    dead = free_port()  # nothing listens there: every call takes an error path
    (tmp_path / "application-db.yaml").write_text(
        "default_connection: duckdb\nconnections:\n"
        "  duckdb:\n    database: ':memory:'\n"
        "  pg:\n    kind: postgres\n"
        f"    url: postgresql://admin:{SENTINEL}@127.0.0.1:{dead}/db?password={SENTINEL}\n"
        "    connect_timeout: 1\n    retries: 0\n"
    )
    (tmp_path / "application-vector.yaml").write_text("connections: {}\n")
    (tmp_path / "application-external.yaml").write_text("connections: {}\n")
    (tmp_path / "application-cache.yaml").write_text(
        "cache:\n  backend: memory\n  redis:\n"
        f"    url: redis://user:{SENTINEL}@127.0.0.1:{dead}/0\n"
        f"    password: {SENTINEL}\n"
        f"  pickle_hmac_key: {SENTINEL}\n"
    )
    fresh = Session(resources=tmp_path)
    with use_session(fresh):
        yield fresh
    fresh.close()


def _run(ip: TestingShell, source: str, seen: list[str]) -> Any:
    """Run a cell, collecting everything it shows and any error message."""
    with capture_output() as cap:
        try:
            result = ip.run_cell(source).result
        except Exception as exc:  # noqa: BLE001 - the message itself is what is checked
            seen.append(f"{type(exc).__name__}: {exc}")
            result = None
    seen.extend([cap.stdout, cap.stderr])
    for out in cap.outputs:
        seen.append(json.dumps(out.data, default=str))
        seen.append(json.dumps(out.metadata, default=str))
    if result is not None:
        data, meta = ip.display_formatter.format(result)
        seen.append(json.dumps(data, default=str))
        seen.append(json.dumps(meta, default=str))
        seen.append(repr(result))
    return result


def _widget_state(widget: Any) -> str:
    import ipywidgets

    parts, stack = [], [widget]
    while stack:
        w = stack.pop()
        if isinstance(w, ipywidgets.Widget):
            parts.append(json.dumps(w.get_state(), default=str))
            stack.extend(getattr(w, "children", ()))
    return "\n".join(parts)


def test_cache_paths_never_show_the_secret(ip: TestingShell, secret_session: Session) -> None:
    import nbinfra

    seen: list[str] = []
    for cell in (
        "%cache use redis",
        "%cache set k 1",
        "%cache get k",
        "%cache list",
        "%cache stats",
        "%cache -n x clear",
        "%cache use memory",
        "%cache set k 1",
        "%cache stats",
    ):
        _run(ip, cell, seen)
    seen.append(_widget_state(nbinfra.widgets.health_panel(connections=False).wait(60)))
    text = "\n".join(seen)
    assert "redis" in text  # the error paths were really taken
    assert "Error" in text
    assert SENTINEL not in text


def test_connection_paths_never_show_the_secret(ip: TestingShell, secret_session: Session) -> None:
    import nbinfra

    seen: list[str] = []
    for cell in (
        "%conn list",
        "%conn health",
        "%conn health pg",
        "%conn pg SELECT 1",
        "%%conn pg -o r\nSELECT 1",
        "%conn use pg",
        "%%conn\nSELECT :nope",
    ):
        _run(ip, cell, seen)
    seen.append(_widget_state(nbinfra.widgets.health_panel().wait(60)))
    text = "\n".join(seen)
    assert "admin:********@127.0.0.1" in text  # the masked target is shown
    assert "ConnectionUnavailableError" in text or "unavailable" in text
    assert SENTINEL not in text
