"""Streaming overhead: nbinfra's ``stream_generate`` vs the raw ``openai`` SDK.

Both read the same 10,000-chunk SSE stream from one local wire server (pre-encoded, so
the server costs the same for both), interleaved round by round. Targets: time to first
chunk within 1 ms of the SDK's, total time within 5 %.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from typing import Any

from benchmarks.harness import Comparison
from nbinfra._secrets import Secret
from nbinfra.llm.openai import OpenAIProvider
from nbinfra.llm.settings import ProviderSettings
from nbinfra.testing import Request, Response
from nbinfra.testing_llm import LLMWireServer, OpenAIFormat, Reply

AREA = "llm"


class _CachedOpenAI(OpenAIFormat):
    """Encodes each reply's stream once and writes SSE events in batches.

    Encoding is then not part of what is measured, and the test server's per-write cost
    (one flush per HTTP chunk) does not drown the clients' per-event work: the first
    events go out one by one (time to first chunk), the rest 64 events per write.
    """

    name = "openai"

    def __init__(self) -> None:
        self._cache: dict[int, list[bytes]] = {}

    def chat(self, reply: Reply, request: Request, stream: bool) -> Response:
        if not stream:
            return super().chat(reply, request, stream)
        key = id(reply)
        if key not in self._cache:
            events = self.stream_events(reply, request)
            head, rest = events[:3], events[3:]
            batches = [b"".join(rest[i : i + 64]) for i in range(0, len(rest), 64)]
            self._cache[key] = head + batches
        return Response(200, headers={"Content-Type": "text/event-stream"}, chunks=self._cache[key])


async def _raw_sdk(client: Any, model: str) -> tuple[float, float, int]:
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
    return first, time.perf_counter() - start, n


async def _nbinfra(llm: OpenAIProvider) -> tuple[float, float, int]:
    start = time.perf_counter()
    first = 0.0
    n = 0
    async for _text in llm.stream_generate("go"):
        if not n:
            first = time.perf_counter() - start
        n += 1
    return first, time.perf_counter() - start, n


def run(smoke: bool) -> list[Comparison]:
    chunks = 300 if smoke else 10_000
    rounds = 3 if smoke else 9
    import openai

    server = LLMWireServer(_CachedOpenAI()).start()
    server.default = Reply(chunks=[f"t{i} " for i in range(chunks)], usage=(5, chunks))
    key = "sk-bench-0000000000"
    loop = asyncio.new_event_loop()
    try:
        raw = openai.AsyncOpenAI(api_key=key, base_url=server.base_url(), max_retries=0)
        ours = OpenAIProvider(
            "bench-model",
            settings=ProviderSettings(api_key=Secret(key), base_url=server.base_url()),
        )
        samples: dict[str, list[tuple[float, float, int]]] = {"openai SDK": [], "nbinfra": []}
        contenders = {
            "openai SDK": lambda: _raw_sdk(raw, "bench-model"),
            "nbinfra": lambda: _nbinfra(ours),
        }
        for fn in contenders.values():  # warm up connections and imports
            loop.run_until_complete(fn())
        for i in range(rounds):
            order = list(contenders.items())
            for name, fn in order if i % 2 == 0 else reversed(order):
                gc.collect()
                result = loop.run_until_complete(fn())
                assert result[2] == chunks, f"{name} saw {result[2]} of {chunks} chunks"
                samples[name].append(result)
        loop.run_until_complete(raw.close())
        loop.run_until_complete(ours.aclose())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        server.stop()

    ttfc = {n: [s[0] for s in v] for n, v in samples.items()}
    total = {n: [s[1] for s in v] for n, v in samples.items()}
    sdk_ttfc = statistics.median(ttfc["openai SDK"])
    delta_ms = (statistics.median(ttfc["nbinfra"]) - sdk_ttfc) * 1e3
    verdict = "met" if delta_ms <= 1.0 else "NOT met"
    workload = f"stream {chunks:,} chunks from a local SSE server"
    return [
        Comparison(
            area=AREA,
            name="stream total",
            workload=workload,
            samples=total,
            nbinfra="nbinfra",
            baseline="openai SDK",
            max_ratio=1.05,
            unit="s/stream",
        ),
        Comparison(
            area=AREA,
            name="time to first chunk",
            workload=workload,
            samples=ttfc,
            nbinfra="nbinfra",
            baseline="openai SDK",
            # "within 1 ms of the SDK" expressed as a ratio against this run's SDK median
            max_ratio=(sdk_ttfc + 1e-3) / sdk_ttfc if sdk_ttfc else None,
            unit="s",
            notes=f"target: within 1 ms of the SDK; measured {delta_ms:+.3f} ms ({verdict})",
            extra={"ttfc_delta_ms": delta_ms},
        ),
    ]


if __name__ == "__main__":
    import sys

    for c in run(smoke="--smoke" in sys.argv):
        print(
            f"{c.name}: nbinfra {c.median('nbinfra') * 1e3:.2f} ms, "
            f"SDK {c.median('openai SDK') * 1e3:.2f} ms, ratio {c.ratio:.3f} "
            f"(spread {c.spread('nbinfra'):.2f}/{c.spread('openai SDK'):.2f}) {c.notes}"
        )
