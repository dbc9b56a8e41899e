"""The benchmark harness runs end to end in smoke mode, so it never rots."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.__main__ import main
from benchmarks.harness import Comparison, interleave


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


def test_comparison_ratio_and_target() -> None:
    c = Comparison(
        "x",
        "n",
        "w",
        {"us": [2.0, 2.0, 4.0], "them": [1.0, 2.0, 2.0]},
        nbinfra="us",
        baseline="them",
        max_ratio=1.1,
    )
    assert c.ratio == 1.0 and c.met is True
    assert c.spread("us") == pytest.approx(1.0)


def test_smoke_run_writes_a_report(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    assert main(["--smoke", "--output", str(out)]) == 0
    text = out.read_text()
    assert "## Machine" in text and "cores:" in text
    assert "sync call over the background loop" in text
    assert "Failed areas" not in text
