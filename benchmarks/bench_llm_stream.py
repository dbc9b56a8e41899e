"""Streaming overhead: nbinfra's ``stream_generate`` vs the raw ``openai`` SDK.

Both run on nbinfra's loop (where the facade and the magics run calls) and read the same
SSE streams from one local wire server, interleaved round by round
(alternating who goes first). The server runs in its own process, so it does not compete
with the measured client for the GIL, and sends pre-encoded events. Targets: total time
for 10,000 chunks within 5 % of the SDK; time to first chunk within 1 ms of the SDK's
(measured over many short streams, since it is a few ms with ms-level scheduling noise).
The client's CPU time per stream is reported too: on a loaded machine it is the steadier
view of the same overhead.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from benchmarks import callgrind
from benchmarks.harness import Comparison, settle
from nbinfra import _loop
from nbinfra._secrets import Secret
from nbinfra.llm.openai import OpenAIProvider
from nbinfra.llm.settings import ProviderSettings
from nbinfra.testing import Request, Response
from nbinfra.testing_llm import LLMWireServer, OpenAIFormat, Reply

AREA = "llm"
ROOT = Path(__file__).resolve().parents[1]
Sample = tuple[float, float, int, float]  # first chunk, total, chunks seen, client CPU
Run = Callable[[Coroutine[Any, Any, Any]], Any]  # runs a coroutine to its end on some loop


class _BenchFormat(OpenAIFormat):
    """Answers model ``chunks-N`` with N chunks, each stream encoded once.

    The first events go out one by one (time to first chunk), the rest 64 per write, so
    the test server's per-write flush does not drown the clients' per-event work.
    """

    name = "openai"

    def __init__(self) -> None:
        self._cache: dict[str, list[bytes]] = {}

    def chat(self, reply: Reply, request: Request, stream: bool) -> Response:
        model = str(request.json().get("model", "chunks-10"))
        if not stream:
            return super().chat(reply, request, stream)
        if model not in self._cache:
            n = int(model.rsplit("-", 1)[-1])
            events = self.stream_events(Reply(chunks=[f"t{i} " for i in range(n)]), request)
            head, rest = events[:3], events[3:]
            batches = [b"".join(rest[i : i + 64]) for i in range(0, len(rest), 64)]
            self._cache[model] = head + batches
        headers = {"Content-Type": "text/event-stream"}
        return Response(200, headers=headers, chunks=self._cache[model])


def serve() -> None:
    """``--serve``: print the server's URL, then serve until stdin closes."""
    import socketserver

    # This process only: send each event at once, as API servers do (TCP_NODELAY). With
    # Nagle on, an event written while the headers are unacknowledged waits for the
    # client's delayed ACK (40 ms), at random for either client.
    socketserver.StreamRequestHandler.disable_nagle_algorithm = True
    server = LLMWireServer(_BenchFormat()).start()
    print(server.base_url(), flush=True)
    sys.stdin.read()
    server.stop()


async def _raw_sdk(client: Any, model: str) -> Sample:
    cpu = time.process_time()
    start = time.perf_counter()
    first = 0.0
    n = 0
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "go"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            if not n:
                first = time.perf_counter() - start
            n += 1
    return first, time.perf_counter() - start, n, time.process_time() - cpu


async def _nbinfra(llm: OpenAIProvider, model: str) -> Sample:
    cpu = time.process_time()
    start = time.perf_counter()
    first = 0.0
    n = 0
    async for _text in llm.stream_generate("go", model=model):
        if not n:
            first = time.perf_counter() - start
        n += 1
    return first, time.perf_counter() - start, n, time.process_time() - cpu


def _measure(
    run: Run,
    contenders: dict[str, Callable[[], Awaitable[Sample]]],
    rounds: int,
    chunks: int,
) -> dict[str, list[Sample]]:
    """Interleaved rounds, alternating which contender goes first."""
    samples: dict[str, list[Sample]] = {name: [] for name in contenders}
    for i in range(rounds):
        order = list(contenders.items())
        for name, fn in order if i % 2 == 0 else reversed(order):
            settle()
            result = run(fn())
            assert result[2] == chunks, f"{name} saw {result[2]} of {chunks} chunks"
            samples[name].append(result)
    return samples


def _compare(run: Run, url: str, chunks: int, rounds: int) -> dict[str, list[Sample]]:
    key = "sk-bench-0000000000"
    model = f"chunks-{chunks}"
    raw, ours = _clients(url, key, model)
    contenders: dict[str, Callable[[], Awaitable[Sample]]] = {
        "openai SDK": lambda: _raw_sdk(raw, model),
        "nbinfra": lambda: _nbinfra(ours, model),
    }
    try:
        for fn in contenders.values():  # warm up connections, imports, the server cache
            run(fn())
        return _measure(run, contenders, rounds, chunks)
    finally:
        run(raw.close())
        run(ours.aclose())


COUNT_ORDER = ("openai SDK", "nbinfra", "openai SDK", "nbinfra")
_NOISE = (
    "see 'stream client instructions': the work nbinfra adds per chunk is a few tenths of "
    "a percent of the SDK's own, so a time ratio past 1.05 is the machine's run-to-run "
    "noise on ~80 us chunks (before the per-round pairing, three full runs of one day "
    "gave 1.015, 1.035 and 1.086 for the same code)"
)


def count(url: str, chunks: int) -> None:
    """``--count``: the phases ``count_phases`` measures, one stream each (see COUNT_ORDER)."""
    run = _loop.run_sync
    model = f"chunks-{chunks}"
    key = "sk-bench-0000000000"
    raw, ours = _clients(url, key, model)
    contenders: dict[str, Callable[[], Awaitable[Sample]]] = {
        "openai SDK": lambda: _raw_sdk(raw, model),
        "nbinfra": lambda: _nbinfra(ours, model),
    }
    for fn in contenders.values():  # warm up: imports, connections, the server's cache
        run(fn())
    for name in COUNT_ORDER:
        settle()
        callgrind.mark()
        result = run(contenders[name]())
        assert result[2] == chunks, f"{name} saw {result[2]} of {chunks} chunks"
    callgrind.mark()
    run(raw.close())
    run(ours.aclose())


def _instructions(url: str, chunks: int) -> dict[str, list[float]]:
    """Client instructions per chunk for each contender, from one callgrind run."""
    phases = callgrind.count_phases(
        [sys.executable, "-m", "benchmarks.bench_llm_stream", "--count", url, str(chunks)]
    )
    samples: dict[str, list[float]] = {name: [] for name in COUNT_ORDER}
    for name, instructions in zip(COUNT_ORDER, phases, strict=True):
        samples[name].append(instructions / chunks)
    return samples


def _clients(url: str, key: str, model: str) -> tuple[Any, OpenAIProvider]:
    import openai

    raw = openai.AsyncOpenAI(api_key=key, base_url=url, max_retries=0)
    ours = OpenAIProvider(model, settings=ProviderSettings(api_key=Secret(key), base_url=url))
    return raw, ours


def run(smoke: bool) -> list[Comparison]:
    chunks, rounds = (300, 3) if smoke else (10_000, 21)
    count_chunks = 2_000
    short_chunks, short_rounds = 20, (5 if smoke else 61)
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_llm_stream", "--serve"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    loop = asyncio.new_event_loop()
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url:
            raise RuntimeError("the benchmark server did not start")
        # Both contenders on nbinfra's loop, where the facade and the magics run calls.
        long = _compare(_loop.run_sync, url, chunks, rounds)
        short = _compare(_loop.run_sync, url, short_chunks, short_rounds)
        # Awaited from another loop (a notebook's top-level ``await``): nbinfra's client
        # lives on its own loop, so each chunk crosses threads; the SDK stays on the caller's.
        forwarded = _compare(loop.run_until_complete, url, chunks, 3 if smoke else 7)
        # Under valgrind the client runs ~50x slower (about two minutes): full runs only.
        counted = _instructions(url, count_chunks) if callgrind.available() and not smoke else None
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()

    ttfc = {n: [s[0] for s in v] for n, v in short.items()}
    hop = {n: [s[1] for s in v] for n, v in forwarded.items()}
    total = {n: [s[1] for s in v] for n, v in long.items()}
    cpu = {n: [s[3] for s in v] for n, v in long.items()}
    first_chunk = Comparison(
        area=AREA,
        name="time to first chunk",
        workload=f"{short_rounds} streams of {short_chunks} chunks from a local SSE server",
        samples=ttfc,
        nbinfra="nbinfra",
        baseline="openai SDK",
        max_excess=1e-3,  # "within 1 ms of the SDK"
        unit="s",
    )
    delta_ms = first_chunk.excess_of("nbinfra", "openai SDK") * 1e3
    verdict = "met" if delta_ms <= 1.0 else "NOT met"
    first_chunk.notes = f"target: within 1 ms of the SDK; measured {delta_ms:+.3f} ms ({verdict})"
    comparisons = [
        Comparison(
            area=AREA,
            name="stream total",
            workload=f"stream {chunks:,} chunks from a local SSE server",
            samples=total,
            nbinfra="nbinfra",
            baseline="openai SDK",
            max_ratio=1.05,
            unit="s/stream",
            limits=_NOISE,
        ),
        Comparison(
            area=AREA,
            name="stream CPU time (client)",
            workload=f"stream {chunks:,} chunks from a local SSE server",
            samples=cpu,
            nbinfra="nbinfra",
            baseline="openai SDK",
            max_ratio=1.05,
            unit="s/stream",
            limits=_NOISE,
            notes="CPU time of the client process (the server runs in another process): "
            "the same work as the wall-clock figure, without other processes' noise.",
        ),
        first_chunk,
        Comparison(
            area=AREA,
            name="stream total, awaited from another loop",
            workload=f"stream {chunks:,} chunks from a local SSE server, awaited on a loop "
            "of the caller's (nbinfra forwards each chunk from its own loop)",
            samples=hop,
            nbinfra="nbinfra",
            baseline="openai SDK",
            unit="s/stream",
            notes="reported: the price of one SDK client on nbinfra's loop for a caller "
            "on another loop (an LLM stream sends tens of chunks a second)",
        ),
    ]
    if counted is None:
        comparisons.append(
            Comparison(
                area=AREA,
                name="stream client instructions",
                workload=f"stream {count_chunks:,} chunks from a local SSE server",
                samples={},
                not_measured="skipped in smoke runs (a minute under valgrind)"
                if smoke
                else "valgrind is not installed (apt-get install valgrind)",
            )
        )
    else:
        comparisons.append(
            Comparison(
                area=AREA,
                name="stream client instructions",
                workload=f"stream {count_chunks:,} chunks from a local SSE server",
                samples=counted,
                nbinfra="nbinfra",
                baseline="openai SDK",
                max_ratio=1.05,
                unit="instructions/chunk",
                notes="Instructions the client process executed per chunk, counted by "
                "valgrind's callgrind (one run, each contender's stream twice, hash seed "
                "fixed): the same work as the time figures, free of the machine's noise.",
            )
        )
    return comparisons


if __name__ == "__main__":
    if "--serve" in sys.argv:
        serve()
    elif "--count" in sys.argv:
        count(sys.argv[2], int(sys.argv[3]))
    else:
        for c in run(smoke="--smoke" in sys.argv):
            print(
                f"{c.name}: nbinfra {c.median('nbinfra') * 1e3:.2f} ms, "
                f"SDK {c.median('openai SDK') * 1e3:.2f} ms, ratio {c.ratio:.3f} "
                f"(spread {c.spread('nbinfra'):.2f}/{c.spread('openai SDK'):.2f}) {c.notes}"
            )
