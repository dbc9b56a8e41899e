"""Markdown report: machine, summary of every target (met / not met), one section per area,
scaling plots (PNG) for the series."""

from __future__ import annotations

import os
import platform
import re
import sys
from collections import defaultdict
from importlib import metadata
from pathlib import Path

from benchmarks.harness import Comparison, fmt_value

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
    "numpy",
    "qdrant-client",
    "chromadb",
    "pgvector",
    "openai",
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
        "cores": f"{os.cpu_count()} ({_cpu_model()})",
        "python": f"{sys.version.split()[0]} ({platform.python_implementation()})",
        "platform": platform.platform(),
        "libraries": ", ".join(versions),
    }


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return found.group(1).strip() if found else "unknown CPU"


def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1 / 5 / 15 min)"
    except OSError:
        return "unknown"


def render(
    comparisons: list[Comparison],
    machine: dict[str, str],
    *,
    smoke: bool,
    failures: list[str],
    plots_dir: Path,
    report_dir: Path | None = None,
) -> str:
    report_dir = report_dir or plots_dir
    lines = ["# Benchmark results", ""]
    if smoke:
        lines += ["Smoke run (tiny sizes): figures are not meaningful; targets are not judged.", ""]
    lines += [
        "Reproduce with `make bench` (or `python -m benchmarks`; `python -m benchmarks cache`",
        "for one area, `--smoke` for the quick pass CI runs). Contenders of a comparison run",
        "interleaved (A B A B ...) in one process, so drift on the machine hits all of them",
        "alike; each figure is the median over the rounds, spread is (max - min) / median.",
        "Ratios are nbinfra / peer per round (the two runs of a round are moments apart),",
        "then the median over the rounds: below 1 means nbinfra is faster.",
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in machine.items()),
        "",
        "## Summary",
        "",
        "| area | comparison | measure | value | target | verdict |",
        "|---|---|---|---|---|---|",
    ]
    misses: list[Comparison] = []
    for c in comparisons:
        for check in c.checks():
            if check.what == "not measured":
                verdict = "not measured"
            elif check.met is None or smoke:
                verdict = "reported" if check.met is None else "n/a (smoke)"
            else:
                verdict = "met" if check.met else "**not met**"
            if check.met is False and not smoke and c not in misses:
                misses.append(c)
            lines.append(
                f"| {c.area} | {c.name} | {check.what} | {check.value} | {check.target} |"
                f" {verdict} |"
            )
    if misses:
        lines += ["", "Targets not met, and what limits them:", ""]
        for c in misses:
            lines.append(f"- {c.area} / {c.name}: {c.limits or 'not analysed in this run'}")

    by_area: dict[str, list[Comparison]] = defaultdict(list)
    for c in comparisons:
        by_area[c.area].append(c)
    for area, items in by_area.items():
        lines += ["", f"## {area}", ""]
        for c in items:
            lines += [f"### {c.name}", "", f"Workload: {c.workload}", ""]
            lines += _contender_table(c)
            if c.notes:
                lines += ["", c.notes]
            if c.not_measured:
                lines += ["", f"Not measured: {c.not_measured}"]
            lines.append("")

    plots = plot_scaling(comparisons, plots_dir)
    if plots:
        lines += ["## Scaling", ""]
        for p in plots:
            rel = os.path.relpath(p, report_dir)
            lines += [f"![{p.stem}]({rel})", ""]
    if failures:
        lines += ["", "## Failed areas", ""] + [f"```\n{f}\n```" for f in failures]
    return "\n".join(lines).rstrip() + "\n"


def _contender_table(c: Comparison) -> list[str]:
    base = c.baseline if c.baseline in c.samples else None
    rows = [
        f"| contender | median ({c.unit}) | min | max | spread | rounds |"
        + (f" / {base} |" if base else ""),
        "|---|---|---|---|---|---|" + ("---|" if base else ""),
    ]
    for name, values in c.samples.items():
        row = (
            f"| {name} | {fmt_value(c.median(name), c.unit)} |"
            f" {fmt_value(min(values), c.unit)} | {fmt_value(max(values), c.unit)} |"
            f" {_spread(c.spread(name), c.unit)} | {len(values)} |"
        )
        if base:
            ratio = c.ratio_of(name, base)
            row += f" {ratio:.3f} |" if ratio is not None else " - |"
        rows.append(row)
    return rows


def _spread(spread: float, unit: str) -> str:
    # Times spread by percents; instruction counts by hundredths of one.
    return f"{spread:.0%}" if unit == "s" or unit.startswith("s/") else f"{spread:.2%}"


def _slug(text: str) -> str:
    return re.sub(r"-+", "-", "".join(ch if ch.isalnum() else "-" for ch in text.lower())).strip(
        "-"
    )


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

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for title, items in series.items():
        items.sort(key=lambda c: c.extra["size"])
        contenders = list(dict.fromkeys(name for c in items for name in c.samples))
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for contender in contenders:
            xs = [c.extra["size"] for c in items if contender in c.samples]
            ys = [c.median(contender) for c in items if contender in c.samples]
            ax.plot(xs, ys, marker="o", label=contender)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(_size_label(items[0].name))
        ax.set_ylabel(f"median time ({items[0].unit}, log)")
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = folder / f"scaling-{_slug(title)}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


def _size_label(name: str) -> str:
    """``"fit recent @ 10,000 messages"`` -> ``"messages"``."""
    if " @ " not in name:
        return "size"
    words = [w for w in name.split(" @ ", 1)[1].split() if not w.replace(",", "").isdigit()]
    return " ".join(words) or "size"
