"""The secret sentinel in every connection and LLM credential: never in any output."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import nbinfra
from nbinfra.session import Session, use_session
from nbinfra.testing import free_port
from nbinfra.testing_llm import Fault, LLMWireServer
from tests.notebook.conftest import TestingShell
from tests.notebook.test_conn_magic import write_resources
from tests.notebook.test_secrets import SENTINEL, _run, _widget_state


@pytest.fixture
def wire() -> Iterator[LLMWireServer]:
    with LLMWireServer("openai") as server:
        yield server


@pytest.fixture
def secrets(tmp_path: Path, wire: LLMWireServer) -> Iterator[Session]:
    dead = free_port()
    write_resources(
        tmp_path,
        "default_connection: duckdb\nconnections:\n"
        "  duckdb:\n    database: ':memory:'\n"
        "  pg:\n    kind: postgres\n"
        f"    url: postgresql://admin:{SENTINEL}@127.0.0.1:{dead}/db?password={SENTINEL}\n"
        "    connect_timeout: 1\n    retries: 0\n",
    )
    (tmp_path / "application-cache.yaml").write_text(
        f"cache:\n  redis:\n    url: redis://u:{SENTINEL}@127.0.0.1:{dead}/0\n"
    )
    (tmp_path / "application-llm.yaml").write_text(
        "llm:\n  default: fake\n  max_retries: 0\n  timeout: 3\n  providers:\n"
        f"    openai:\n      api_key: {SENTINEL}\n      base_url: {wire.base_url('openai')}\n"
        f"    groq:\n      api_key: {SENTINEL}\n      base_url: http://127.0.0.1:{dead}/v1\n"
        f"    anthropic:\n      api_key: {SENTINEL}\n"
    )
    fresh = Session(resources=tmp_path)
    with use_session(fresh):
        yield fresh
    fresh.close()


def _last_traceback(ip: TestingShell, wire: LLMWireServer) -> str:
    """The full traceback of a failing call, as IPython would print it."""
    wire.push(Fault.unauthorized(f"Incorrect API key provided: {SENTINEL}"))
    try:
        ip.cell("%%llm -p openai\nonce more")
    except Exception as exc:  # noqa: BLE001 - rendered as IPython would
        lines = exc._render_traceback_()  # type: ignore[attr-defined]
        assert len(lines) > 1 and any("Traceback" in line for line in lines)
        return "\n".join(lines)
    raise AssertionError("expected an error")


def test_no_output_shows_a_credential(
    ip: TestingShell, secrets: Session, wire: LLMWireServer
) -> None:
    seen: list[str] = []
    wire.push(Fault.unauthorized(f"Incorrect API key provided: {SENTINEL}"))
    for cell in (
        "%conn list",
        "%conn health",
        "%conn health pg",
        "%conn pg SELECT 1",
        "%%conn pg\nSELECT 1",
        "%conn use pg",
        "%llm list",
        "%%llm -p openai\nhello",
        "%%llm -p groq --no-stream\nhello",
        "%%llm -p openai -o r\nhello",
        "%llm usage",
        "%cache use redis",
        "%cache set k 1",
    ):
        _run(ip, cell, seen)
    ip.run_line_magic("config", "NbinfraMagics.short_errors = False")
    seen.append(_last_traceback(ip, wire))
    seen.append(_widget_state(nbinfra.widgets.health_panel()))
    seen.append(_widget_state(nbinfra.widgets.provider_picker(probe=True)))
    text = "\n".join(seen)
    assert "AuthenticationError" in text and "pg" in text  # the error paths were taken
    assert SENTINEL not in text
