"""Markdown report: machine, one table per area, targets met / not met, scaling plots."""

from __future__ import annotations

import os
import platform
import sys
from collections import defaultdict
from importlib import metadata
from pathlib import Path

from benchmarks.harness import Comparison

VERSIONED = [
    "nbinfra",
    "redis",
    "aiocache",
    "cachetools",
    "duckdb",
    "jupysql",
    "psycopg",
    "pandas",
    "pyarrow",
    "qdrant-client",
    "chromadb",
    "pgvector",
    "openai",
    "anthropic",
    "langchain-core",
    "tiktoken",
    "ipython",
]


def machine_info() -> dict[str, str]:
    versions = []
    for dist in VERSIONED:
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return {
        "cores": str(os.cpu_count()),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "libraries": ", ".join(versions),
    }


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.2f} us"


def render(
    comparisons: list[Comparison],
    machine: dict[str, str],
    *,
    smoke: bool,
    failures: list[str],
    plots_dir: Path,
) -> str:
    lines = ["# Benchmark results", ""]
    if smoke:
        lines += [
            "Smoke run (tiny sizes): figures are not meaningful and targets are not judged.",
            "",
        ]
    lines += [
        "Reproduce with `make bench` (or `python -m benchmarks`). Contenders run interleaved",
        "(A B A B ...) in one process; each figure is the median over rounds, spread is",
        "(max - min) / median.",
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in machine.items()),
        "",
        "## Summary",
        "",
        "| area | comparison | nbinfra / baseline | target | met |",
        "|---|---|---|---|---|",
    ]
    for c in comparisons:
        if c.ratio is None:
            continue
        target = f"<= {c.max_ratio:g}" if c.max_ratio is not None else "report"
        met = "n/a" if smoke or c.met is None else ("met" if c.met else "**not met**")
        lines.append(f"| {c.area} | {c.name} | {c.ratio:.3f} | {target} | {met} |")
    by_area: dict[str, list[Comparison]] = defaultdict(list)
    for c in comparisons:
        by_area[c.area].append(c)
    for area, items in by_area.items():
        lines += ["", f"## {area}", ""]
        for c in items:
            lines += [f"### {c.name}", "", c.workload, ""]
            lines += ["| contender | median | spread | rounds |", "|---|---|---|---|"]
            for name in c.samples:
                lines.append(
                    f"| {name} | {fmt_time(c.median(name))} | {c.spread(name):.1%} |"
                    f" {len(c.samples[name])} |"
                )
            for key, value in c.extra.items():
                lines.append(f"\n- {key}: {value:.3g}")
            if c.notes:
                lines += ["", c.notes]
            lines.append("")
    plots = plot_scaling(comparisons, plots_dir) if not smoke else []
    if plots:
        lines += ["## Scaling", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    if failures:
        lines += ["", "## Failed areas", ""] + [f"```\n{f}\n```" for f in failures]
    return "\n".join(lines) + "\n"


def plot_scaling(comparisons: list[Comparison], folder: Path) -> list[Path]:
    """One PNG per scaling series: comparisons whose ``extra`` has ``size``."""
    series: dict[str, list[Comparison]] = defaultdict(list)
    for c in comparisons:
        if "size" in c.extra:
            series[f"{c.area}: {c.name.split(' @ ')[0]}"].append(c)
    if not series:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for title, items in series.items():
        items.sort(key=lambda c: c.extra["size"])
        fig, ax = plt.subplots(figsize=(6, 4))
        for contender in items[0].samples:
            xs = [c.extra["size"] for c in items if contender in c.samples]
            ys = [c.median(contender) for c in items if contender in c.samples]
            ax.plot(xs, ys, marker="o", label=contender)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("size")
        ax.set_ylabel("seconds (median)")
        ax.set_title(title)
        ax.legend()
        fig.tight_layout()
        path = folder / ("scaling-" + "".join(ch if ch.isalnum() else "-" for ch in title) + ".png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written
