"""Run every comparison and write ``benchmarks/RESULTS.md``.

python -m benchmarks            # full sizes (minutes)
python -m benchmarks --smoke    # tiny sizes, checks the harness still runs (CI)
python -m benchmarks cache llm  # only some areas (bench_cache.py, bench_llm*.py)
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path

from benchmarks.harness import Comparison
from benchmarks.report import machine_info, render

HERE = Path(__file__).parent


def discover(selected: list[str]) -> list[str]:
    names = sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))
    if selected:
        names = [n for n in names if any(n.startswith(f"bench_{s}") for s in selected)]
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("areas", nargs="*", help="only these areas (prefixes of bench_*)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; no targets judged")
    parser.add_argument(
        "--output", type=Path, default=None, help="where to write the markdown report"
    )
    args = parser.parse_args(argv)
    output = args.output or (HERE / ("RESULTS-smoke.md" if args.smoke else "RESULTS.md"))

    comparisons: list[Comparison] = []
    failures: list[str] = []
    for name in discover(args.areas):
        started = time.perf_counter()
        print(f"-- {name} ...", flush=True)
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            found = module.run(smoke=args.smoke)
        except Exception:  # noqa: BLE001 - report every failing area, keep the others
            failures.append(f"{name}: {traceback.format_exc(limit=3)}")
            print(failures[-1], file=sys.stderr)
            continue
        comparisons.extend(found)
        print(f"   {len(found)} comparisons in {time.perf_counter() - started:.1f} s", flush=True)

    text = render(
        comparisons, machine_info(), smoke=args.smoke, failures=failures, plots_dir=output.parent
    )
    output.write_text(text)
    print(f"wrote {output}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
