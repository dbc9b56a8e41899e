"""LLM over data: nbinfra's ``map`` vs LangChain's ``abatch`` vs raw ``AsyncOpenAI`` + gather.

2,000 prompts to a local OpenAI wire server in its own process (so it does not share the
client's GIL) that takes 100 ms per answer and enforces 1,200 requests a minute (a token
bucket with one second of burst, answering 429 with ``Retry-After`` above it); 32 requests
at a time. The ideal time is set by the limit: 2,000 / 20 a second = 100 s.

- ``map``: ``nbinfra.llm(...).map(prompts, concurrency=32, rpm=1200)``, answers written to a
  fresh durable store (a JSONL file, fsynced per answer) each round.
- ``langchain``: ``ChatOpenAI(...).abatch(prompts, config={"max_concurrency": 32})`` with
  ``InMemoryRateLimiter`` at the same rate and burst (its documented way to respect a
  limit); the SDK's own retries (2) handle a 429.
- ``raw``: ``AsyncOpenAI`` with ``asyncio.gather`` and a ``Semaphore(32)``, each request
  after ``aacquire()`` on the same kind of ``InMemoryRateLimiter``; SDK retries (2).

Neither peer knows the server's limit by itself: both get the same client-side limiter.
Then the same with 10 % of requests answered 429 (``Retry-After: 0.1``, seeded), where a
failed row is one that still has no answer. Last, ``map`` run again over the finished
store: every row comes from the store, with 0 requests. Smoke mode scales the limit up
(200 prompts at 12,000 a minute, 10 ms answers) to take a few seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.harness import Comparison, settle
from nbinfra import _loop

AREA = "llm"
ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-bench"
MODEL = "gpt-4o-mini"
CONCURRENCY = 32
_ROUNDS = itertools.count()  # a fresh store file for every round


def serve(latency: float, rpm: float, limited: float) -> None:
    """``--serve``: an OpenAI wire server with the knobs; ``/stats`` and ``/reset``."""
    from nbinfra.testing import Request, Response
    from nbinfra.testing_llm import Chaos, LLMWireServer, ServerLimit

    server = LLMWireServer("openai")
    server.latency = latency

    def reset(_request: Request) -> Response:
        server.clear()
        server.limit = ServerLimit(rpm=rpm)
        server.chaos = Chaos(seed=11, rate_limited=limited, retry_after=0.1) if limited else None
        return Response(200, {"ok": True})

    def stats(_request: Request) -> Response:
        t = server.traffic
        return Response(
            200, {"count": t.count, "limited": t.answered(429), "max_in_flight": t.max_in_flight}
        )

    server.http.route("POST", "/reset", reset)
    server.http.route("GET", "/stats", stats)
    server.start()
    reset(None)  # type: ignore[arg-type]
    print(server.url, flush=True)
    sys.stdin.read()
    server.stop()


class Server:
    """The wire server's process."""

    def __init__(self, latency: float, rpm: float, limited: float) -> None:
        args = [str(latency), str(rpm), str(limited)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_llm_map", "--serve", *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url:
            raise RuntimeError("the benchmark server did not start")

    def call(self, method: str, path: str) -> dict[str, Any]:
        request = urllib.request.Request(
            self.url + path, method=method, data=b"" if method == "POST" else None
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            found: dict[str, Any] = json.loads(answer.read())
        return found

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _contenders(url: str, rpm: float, prompts: list[str], folder: Path) -> dict[str, Any]:
    from langchain_core.rate_limiters import InMemoryRateLimiter
    from langchain_openai import ChatOpenAI
    from openai import AsyncOpenAI

    from nbinfra._secrets import Secret
    from nbinfra.llm.openai import OpenAIProvider
    from nbinfra.llm.settings import ModelInfo, ProviderSettings
    from nbinfra.llm.sync import SyncLLM
    from nbinfra.session import session

    rps = rpm / 60
    settings = ProviderSettings(
        api_key=Secret(KEY),
        base_url=url + "/v1",
        model=MODEL,
        timeout=30.0,
        max_retries=0,
        models={MODEL: ModelInfo(128000, 16384, 0.15, 0.60)},
    )
    llm = SyncLLM(OpenAIProvider(settings=settings))
    results: dict[str, int] = {}

    def limiter() -> InMemoryRateLimiter:
        return InMemoryRateLimiter(
            requests_per_second=rps, check_every_n_seconds=0.005, max_bucket_size=max(1, rps)
        )

    def run_map(store: Path | None = None) -> Any:
        session().state.pop("llm.limiters", None)  # each round starts with a full bucket
        path = store or folder / f"answers-{next(_ROUNDS)}.jsonl"
        out = llm.map(prompts, concurrency=CONCURRENCY, rpm=rpm, store=str(path), progress=False)
        results["map"] = int(out["error"].notna().sum())
        return out

    async def run_langchain() -> None:
        chat = ChatOpenAI(
            model=MODEL, api_key=KEY, base_url=url + "/v1", rate_limiter=limiter(), timeout=30
        )
        out = await chat.abatch(
            prompts, config={"max_concurrency": CONCURRENCY}, return_exceptions=True
        )
        results["langchain"] = sum(1 for o in out if isinstance(o, BaseException))

    async def run_raw() -> None:
        client = AsyncOpenAI(api_key=KEY, base_url=url + "/v1", timeout=30)
        gate = asyncio.Semaphore(CONCURRENCY)
        bucket = limiter()

        async def one(prompt: str) -> Any:
            async with gate:
                await bucket.aacquire()
                return await client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": prompt}]
                )

        try:
            out = await asyncio.gather(*(one(p) for p in prompts), return_exceptions=True)
        finally:
            await client.close()
        results["raw"] = sum(1 for o in out if isinstance(o, BaseException))

    return {
        "map": run_map,
        "langchain": lambda: _loop.run_sync(run_langchain()),
        "raw": lambda: _loop.run_sync(run_raw()),
        "failed": results,
        "close": llm.close,
    }


def _scenario(
    server: Server, contenders: dict[str, Any], names: list[str], rounds: int, pause: float
) -> tuple[dict[str, list[float]], dict[str, dict[str, int]]]:
    samples: dict[str, list[float]] = {n: [] for n in names}
    seen: dict[str, dict[str, int]] = {}
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            server.call("POST", "/reset")
            time.sleep(pause)  # the client's bucket refills (the server's is new)
            settle()
            start = time.perf_counter()
            contenders[name]()
            samples[name].append(time.perf_counter() - start)
            stats = server.call("GET", "/stats")
            stats["failed"] = contenders["failed"].get(name, -1)
            seen[name] = stats
    return samples, seen


def _notes(seen: dict[str, dict[str, int]]) -> str:
    return "; ".join(
        f"{n}: {s['count']:,} requests, {s['limited']:,} answered 429, {s['failed']} failed rows, "
        f"at most {s['max_in_flight']} in flight"
        for n, s in seen.items()
    )


def run(smoke: bool) -> list[Comparison]:
    n, latency, rpm, rounds = (200, 0.01, 12_000.0, 1) if smoke else (2_000, 0.1, 1_200.0, 1)
    pause = 0.05 if smoke else 1.1
    ideal = n / (rpm / 60)
    prompts = [f"Classify ticket {i}: the app crashes when I {i % 7} times" for i in range(n)]
    names = ["map", "langchain", "raw"]
    workload = (
        f"{n:,} prompts, {latency * 1000:.0f} ms answers, {rpm:,.0f} rpm limit, concurrency 32"
    )
    out: list[Comparison] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for limited in (0.0, 0.1):
            server = Server(latency, rpm, limited)
            try:
                contenders = _contenders(server.url, rpm, prompts, folder)
                try:
                    samples, seen = _scenario(server, contenders, names, rounds, pause)
                    if not limited:
                        rerun = _rerun(server, contenders, folder)
                finally:
                    contenders["close"]()
            finally:
                server.close()
            failed = seen["map"]["failed"]
            if not limited:
                out.append(
                    Comparison(
                        AREA,
                        "map at the rate limit",
                        workload + f"; ideal {ideal:.0f} s",
                        samples,
                        nbinfra="map",
                        baseline="langchain",
                        max_ratio=1.0,
                        also={},
                        max_seconds=1.1 * ideal,
                        unit="s",
                        notes=_notes(seen) + "; peers get the same client-side limiter",
                        extra={"ideal": ideal, "failed_rows": float(failed)},
                    )
                )
            else:
                out.append(
                    Comparison(
                        AREA,
                        "map with 10% of requests answered 429",
                        workload + f"; Retry-After 0.1 s; ideal {ideal:.0f} s",
                        samples,
                        nbinfra="map",
                        baseline="langchain",
                        max_seconds=1.3 * ideal,
                        unit="s",
                        notes=_notes(seen)
                        + "; map counts a refused request against its own bucket (the peers'"
                        " SDK retries pass their limiter), so its ideal here is 2,200 sends"
                        + ("" if failed == 0 else f"; MAP HAD {failed} FAILED ROWS"),
                        extra={"ideal": ideal, "failed_rows": float(failed)},
                        limits="" if failed == 0 else "rows failed",
                    )
                )
        out.append(rerun)
    return out


def _rerun(server: Server, contenders: dict[str, Any], folder: Path) -> Comparison:
    """``map`` again over the last finished store: 0 requests, every row from the store."""
    stores = sorted(folder.glob("answers-*.jsonl"), key=lambda p: p.stat().st_mtime)
    last = stores[-1]
    server.call("POST", "/reset")
    samples: list[float] = []
    for _ in range(3):
        settle()
        start = time.perf_counter()
        frame = contenders["map"](last)
        samples.append(time.perf_counter() - start)
    stats = server.call("GET", "/stats")
    cached = int(frame["cached"].sum())
    return Comparison(
        AREA,
        "map re-run over a finished store",
        f"{len(frame):,} rows answered before, cache mode",
        {"map": samples},
        nbinfra="map",
        max_seconds=1.0,
        unit="s",
        notes=f"{stats['count']} requests sent; {cached:,} of {len(frame):,} rows from the store",
        extra={"requests": float(stats["count"])},
        limits="" if stats["count"] == 0 else "requests were sent",
    )


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--serve":
    serve(float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
