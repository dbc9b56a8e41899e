"""Token and cost meter per cell and per session, for ``%llm usage`` and the answer footer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nbinfra.notebook.tables import Column, html

__all__ = ["CallRecord", "UsageMeter", "footer_text"]


@dataclass(frozen=True)
class CallRecord:
    """One LLM call made by a magic."""

    cell: int | None
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    exact: bool
    latency: float
    cost: float | None
    cached: bool


@dataclass
class UsageMeter:
    """Every call recorded, with per-cell and session totals."""

    calls: list[CallRecord] = field(default_factory=list)

    def record(self, response: Any, cell: int | None) -> CallRecord:
        usage = response.usage
        rec = CallRecord(
            cell=cell,
            provider=str(response.provider),
            model=str(response.model),
            input_tokens=int(usage.input_tokens),
            output_tokens=int(usage.output_tokens),
            exact=bool(usage.exact),
            latency=float(response.latency or 0.0),
            cost=response.cost,
            cached=bool(response.cached or usage.cached),
        )
        self.calls.append(rec)
        return rec

    def per_cell(self) -> list[dict[str, Any]]:
        rows: dict[int | None, dict[str, Any]] = {}
        for rec in self.calls:
            row = rows.setdefault(
                rec.cell,
                {
                    "cell": rec.cell,
                    "calls": 0,
                    "input": 0,
                    "output": 0,
                    "cost": None,
                    "latency": 0.0,
                },
            )
            row["calls"] += 1
            row["input"] += rec.input_tokens
            row["output"] += rec.output_tokens
            row["latency"] += rec.latency
            if rec.cost is not None:
                row["cost"] = (row["cost"] or 0.0) + rec.cost
        return list(rows.values())

    def totals(self) -> dict[str, Any]:
        costs = [r.cost for r in self.calls if r.cost is not None]
        return {
            "calls": len(self.calls),
            "input": sum(r.input_tokens for r in self.calls),
            "output": sum(r.output_tokens for r in self.calls),
            "cost": sum(costs) if costs else None,
            "cached": sum(1 for r in self.calls if r.cached),
            "exact": all(r.exact for r in self.calls),
        }

    def clear(self) -> None:
        self.calls.clear()

    # -- display ------------------------------------------------------------------
    def _repr_markdown_(self) -> str:
        lines = ["| cell | calls | input | output | cost | latency |", "|---|---|---|---|---|---|"]
        for row in self.per_cell():
            lines.append(
                f"| {row['cell'] if row['cell'] is not None else '-'} | {row['calls']} | "
                f"{row['input']} | {row['output']} | {_cost(row['cost'])} | "
                f"{row['latency']:.2f} s |"
            )
        tot = self.totals()
        lines.append(
            f"| **session** | {tot['calls']} | {tot['input']} | {tot['output']} | "
            f"{_cost(tot['cost'])} | |"
        )
        return "\n".join(lines)

    def __repr__(self) -> str:
        tot = self.totals()
        label = "" if tot["exact"] else " (estimated)"
        return (
            f"{tot['calls']} LLM calls, {tot['input']} input + {tot['output']} output tokens"
            f"{label}, cost {_cost(tot['cost'])}, {tot['cached']} from cache"
        )

    def _table(self) -> tuple[list[Any], list[tuple[Any, ...]]]:
        columns: list[Any] = [
            "cell",
            "calls",
            "input",
            "output",
            Column("cost", right=True),
            Column("latency", right=True),
        ]
        rows: list[tuple[Any, ...]] = [
            (
                row["cell"] if row["cell"] is not None else "-",
                row["calls"],
                row["input"],
                row["output"],
                _cost(row["cost"]),
                f"{row['latency']:.2f} s",
            )
            for row in self.per_cell()
        ]
        tot = self.totals()
        rows.append(("session", tot["calls"], tot["input"], tot["output"], _cost(tot["cost"]), ""))
        return columns, rows

    def _repr_html_(self) -> str:
        return html(*self._table(), footer=repr(self))


def _cost(cost: float | None) -> str:
    return "n/a" if cost is None else f"${cost:.6f}"


def footer_text(response: Any) -> str:
    """``fake:echo · 12 in + 30 out tokens (exact) · 0.41 s · $0.000010 · cache hit``."""
    usage = response.usage
    parts = [
        f"{response.provider}:{response.model}",
        f"{usage.input_tokens} in + {usage.output_tokens} out tokens "
        f"({'exact' if usage.exact else 'estimated'})",
        f"{float(response.latency or 0.0):.2f} s",
    ]
    if response.cost is not None:
        parts.append(_cost(response.cost))
    if response.cached or usage.cached:
        parts.append("cache hit")
    return " · ".join(parts)
