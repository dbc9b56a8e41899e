"""The benchmark harness: targets judged as stated, and the smoke run end to end (so the
harness never rots). No timing is asserted here; figures live in benchmarks/RESULTS.md."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import callgrind
from benchmarks.harness import Comparison, fmt_value, interleave
from benchmarks.report import plot_scaling, render
from nbinfra.testing import service_unavailable

ROOT = Path(__file__).resolve().parents[1]
AREAS = [
    "cache",
    "config",
    "connections",
    "explore",
    "interrupt",
    "llm.context",
    "llm",
    "facade",
    "frames",
    "notebook",
    "parse",
    "spark",
    "sql",
    "vector",
]


def test_interleave_alternates_contenders_and_reports_per_op() -> None:
    order: list[str] = []
    samples = interleave(
        {"a": lambda: order.append("a"), "b": lambda: order.append("b")},
        rounds=3,
        ops=2,
        warmup=1,
    )
    assert order == ["a", "b"] + ["a", "b"] * 3  # warmup, then A B A B A B
    assert [len(v) for v in samples.values()] == [3, 3]


def test_comparison_ratio_is_the_median_of_per_round_ratios() -> None:
    # Round by round "us" took 2x, 1x, 2x: the medians alone (2 and 2) would say 1.0.
    c = Comparison(
        "x",
        "n",
        "w",
        {"us": [2.0, 2.0, 4.0], "them": [1.0, 2.0, 2.0]},
        nbinfra="us",
        baseline="them",
        max_ratio=1.1,
    )
    assert c.ratio == 2.0 and c.met is False
    assert c.spread("us") == pytest.approx(1.0)
    # A machine that slows down mid-run moves both sides of each round alike.
    drift = Comparison(
        "x",
        "n",
        "w",
        {"us": [1.02, 2.04, 3.06], "them": [1.0, 2.0, 3.0]},
        nbinfra="us",
        baseline="them",
        max_ratio=1.05,
    )
    assert drift.ratio == pytest.approx(1.02) and drift.met is True


def test_unpaired_samples_fall_back_to_the_ratio_of_medians() -> None:
    c = Comparison(
        "x",
        "n",
        "w",
        {"us": [2.0, 2.0, 4.0], "them": [1.0, 2.0]},
        nbinfra="us",
        baseline="them",
        max_excess=0.1,
    )
    assert c.ratio == pytest.approx(2.0 / 1.5)
    assert c.excess_of("us", "them") == pytest.approx(0.5)


def test_every_kind_of_target_is_judged() -> None:
    c = Comparison(
        "x",
        "n",
        "w",
        {"us": [3e-3, 3e-3], "raw": [2e-3, 2e-3], "peer": [6e-3, 6e-3]},
        nbinfra="us",
        baseline="raw",
        max_ratio=1.2,  # 1.5: not met
        also={"peer": 0.5},  # 0.5: met
        max_excess=2e-3,  # +1 ms: met
        max_seconds=1e-3,  # 3 ms: not met
    )
    verdicts = {check.what: check.met for check in c.checks()}
    assert verdicts == {
        "us / raw": False,
        "us - raw": True,
        "us / peer": True,
        "us per op": False,
    }
    assert c.met is False


def test_report_states_misses_with_their_limits_and_unmeasured_contenders(
    tmp_path: Path,
) -> None:
    slow = Comparison(
        "cache",
        "get",
        "w",
        {"nbinfra": [2.0], "raw": [1.0]},
        nbinfra="nbinfra",
        baseline="raw",
        max_ratio=1.1,
        limits="one extra round trip per call",
    )
    absent = Comparison(
        "notebook",
        "load vs peer",
        "w",
        {"nbinfra": [1.0]},
        nbinfra="nbinfra",
        baseline="peer",
        max_ratio=0.1,
        not_measured="peer: side venv setup failed (no registry)",
    )
    text = render([slow, absent], {"cores": "2"}, smoke=False, failures=[], plots_dir=tmp_path)
    assert "| cache | get | nbinfra / raw | 2.000 | <= 1.1 | **not met** |" in text
    assert "- cache / get: one extra round trip per call" in text
    assert "| notebook | load vs peer | not measured | - | peer: side venv setup failed" in text
    smoke = render([slow], {"cores": "2"}, smoke=True, failures=[], plots_dir=tmp_path)
    assert "n/a (smoke)" in smoke and "not met" not in smoke


def test_scaling_series_are_plotted_per_contender(tmp_path: Path) -> None:
    series = [
        Comparison(
            "llm.context",
            f"fit @ {n:,} messages",
            "w",
            {"nbinfra": [n * 1e-6], "langchain": [n * 1e-4]},
            extra={"size": n},
        )
        for n in (1_000, 10_000, 100_000)
    ]
    [png] = plot_scaling(series, tmp_path)
    assert png.name == "scaling-llm-context-fit.png"
    assert png.read_bytes().startswith(b"\x89PNG")


@pytest.mark.timeout(600)  # a heavily loaded machine; the run itself takes under a minute
def test_smoke_run_covers_every_area_and_writes_a_report(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--output", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = out.read_text()
    assert "## Machine" in text and "cores:" in text and "Failed areas" not in text
    for area in AREAS:
        assert f"\n## {area}\n" in text, area
    assert "**not met**" not in text  # smoke runs never judge
    pngs = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    assert any("context" in p for p in pngs) and any("duckdb" in p for p in pngs), pngs
    assert any("get-many" in p for p in pngs), pngs


def test_callgrind_counts_each_phase_between_marks() -> None:
    """The instruction counter behind the streaming figure: a phase that does twice the
    work counts twice the instructions, and the counts repeat run to run."""
    if not callgrind.available():
        service_unavailable("valgrind", "apt-get install valgrind")
    argv = [sys.executable, "-m", "benchmarks.callgrind", "--child"]
    one, two = callgrind.count_phases(argv, timeout=300)
    assert two / one == pytest.approx(2.0, rel=0.02)
    again = callgrind.count_phases(argv, timeout=300)
    assert again[0] == pytest.approx(one, rel=0.005)


def test_instruction_counts_are_shown_as_counts() -> None:
    assert fmt_value(1234567.4, "instructions/chunk") == "1,234,567"
    assert fmt_value(2e-3, "s/op") == "2.00 ms"
