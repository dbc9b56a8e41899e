"""The sync facade's hop onto the background loop vs a bare threadsafe round trip."""

from __future__ import annotations

import asyncio
import threading

from benchmarks.harness import Comparison, interleave
from nbinfra import _loop


async def _noop() -> int:
    return 1


def run(smoke: bool = False) -> list[Comparison]:
    ops = 200 if smoke else 5_000
    rounds = 3 if smoke else 9

    bare_loop = asyncio.new_event_loop()
    thread = threading.Thread(target=bare_loop.run_forever, daemon=True)
    thread.start()
    direct_loop = asyncio.new_event_loop()

    def bare() -> None:
        for _ in range(ops):
            asyncio.run_coroutine_threadsafe(_noop(), bare_loop).result()

    def facade() -> None:
        for _ in range(ops):
            _loop.run_sync(_noop())

    async def awaited() -> None:
        for _ in range(ops):
            await _noop()

    def direct() -> None:
        direct_loop.run_until_complete(awaited())

    try:
        samples = interleave(
            {
                "nbinfra run_sync": facade,
                "bare run_coroutine_threadsafe": bare,
                "direct await (same loop)": direct,
            },
            rounds=rounds,
            ops=ops,
        )
    finally:
        bare_loop.call_soon_threadsafe(bare_loop.stop)
        thread.join(5)
        bare_loop.close()
        direct_loop.close()
    return [
        Comparison(
            area="facade",
            name="sync call over the background loop",
            workload=f"{ops} no-op coroutines per round, each a full round trip",
            samples=samples,
            nbinfra="nbinfra run_sync",
            baseline="bare run_coroutine_threadsafe",
            max_ratio=1.2,
            unit="s/call",
            notes="The direct await has no thread hop; it shows what the hop itself costs.",
        )
    ]
