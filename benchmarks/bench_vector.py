"""Vector stores: nbinfra's managers vs each raw client, on the same embedded engines.

Per backend (Qdrant local ``:memory:``, Chroma persistent in a temp folder, PostgreSQL +
pgvector on the embedded server, HNSW index on both sides):

- upsert of N x 384-dim points with small payloads, in batches of 256, into a fresh
  collection (recreated before every timed run, outside the timing);
- Q top-10 cosine searches on that collection.

Where nbinfra's calls run follows its loop policy. The awaited manager of an in-process
engine (Qdrant local, Chroma) is awaited from a loop on the caller's thread, as a notebook's
top-level ``await`` is (the kernel's loop runs on the main thread), and the facade runs an
open in-process engine on the caller's thread too (no loop hop). PgVector's pool lives on
nbinfra's loop: its awaited manager runs there (``_loop.run_sync``, one hop per timed
chunk) and its facade hops there once per call.

Contenders: the raw client called directly (``QdrantClient.upsert`` with a ``Batch``,
``Collection.upsert``, psycopg ``executemany``/``execute`` with pgvector's adapter), the
awaited nbinfra manager (``await store.upsert(...)``, the core API; ratio target <= 1.2x)
and, for searches, the notebook facade (``SyncConnection.search``: one hop onto nbinfra's
loop per call). Figures are seconds per point / per search; ops/s are in the notes.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine
from typing import Any

from benchmarks.harness import Comparison, settle

DIM = 384
BATCH = 256
RAW_ON_LOOP = "raw client on nbinfra's loop thread"
TOP_K = 10


def run(
    smoke: bool = False, backends: tuple[str, ...] = ("qdrant", "chromadb", "pgvector")
) -> list[Comparison]:
    import numpy as np

    n = 100 if smoke else 10_000
    q = 10 if smoke else 1_000
    rounds = 1 if smoke else 3
    rng = np.random.default_rng(42)
    data = Data(
        ids=list(range(n)),
        vectors=rng.normal(size=(n, DIM)).astype(np.float32),
        payloads=[{"i": i, "group": f"g{i % 10}"} for i in range(n)],
        queries=rng.normal(size=(q, DIM)).astype(np.float32),
    )
    comparisons: list[Comparison] = []
    classes = {"qdrant": QdrantBench, "chromadb": ChromaBench, "pgvector": PgVectorBench}
    for name in backends:
        bench = classes[name](data)
        try:
            comparisons += bench.measure(rounds)
        finally:
            bench.close()
    return comparisons


class Data:
    def __init__(self, ids: list[int], vectors: Any, payloads: list[dict[str, Any]], queries: Any):
        self.ids = ids
        self.str_ids = [str(i) for i in ids]
        self.vectors = vectors
        self.payloads = payloads
        self.queries = queries


class Bench:
    """One backend: raw client + nbinfra manager on the same engine."""

    name = ""
    min_upsert_rounds = 1  # more for the fast engines, whose rounds are noisier

    def __init__(self, data: Data) -> None:
        self.data = data
        self.store: Any = None

    awaited_here = False  # True: the awaited manager is awaited on the caller's thread

    def wait(self, coro: Coroutine[Any, Any, Any]) -> Any:
        # nbinfra's own loop, where async resources live (set-up, and PgVector's calls).
        from nbinfra import _loop

        return _loop.run_sync(coro)

    def await_nb(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """The awaited manager's timed calls, where a notebook's ``await`` would run them."""
        if not self.awaited_here:
            return self.wait(coro)
        import asyncio

        runner = getattr(self, "_runner", None)
        if runner is None:
            runner = self._runner = asyncio.Runner()  # one loop, kept like a kernel's
        return runner.run(coro)

    # raw side
    def raw_reset(self, name: str) -> None: ...
    def raw_upsert(self, name: str) -> None: ...
    def raw_search(self, name: str, vector: Any) -> list[Any]: ...

    def quiesce(self) -> None:
        """Let the engine finish background work the upserts caused, before the searches."""

    def close(self) -> None:
        if self.store is not None:
            self.wait(self.store.disconnect())
        runner = getattr(self, "_runner", None)
        if runner is not None:
            runner.close()

    # nbinfra side
    async def nb_reset(self, name: str) -> None:
        await self.store.drop_collection(name)
        await self.store.create_collection(name, DIM)

    async def nb_upsert(self, name: str) -> None:
        d = self.data
        await self.store.upsert(name, d.str_ids, d.vectors, d.payloads, batch_size=BATCH)

    async def nb_searches(self, name: str, queries: Any) -> None:
        for vector in queries:
            await self.store.search(name, vector, TOP_K)

    def measure(self, rounds: int) -> list[Comparison]:
        d = self.data
        n, q = len(d.ids), len(d.queries)
        upsert: dict[str, list[float]] = {"raw client": [], "nbinfra": []}
        for index in range(max(rounds, self.min_upsert_rounds)):
            # Alternate who goes first: the second upsert of a round runs on a heap the
            # first one just grew.
            order = ("raw client", "nbinfra") if index % 2 == 0 else ("nbinfra", "raw client")
            for contender in order:
                if contender == "raw client":
                    self.raw_reset("raw_up")
                    upsert[contender].append(_timed(lambda: self.raw_upsert("raw_up")) / n)
                else:
                    self.wait(self.nb_reset("nb_up"))
                    timed = _timed(lambda: self.await_nb(self.nb_upsert("nb_up")))
                    upsert[contender].append(timed / n)
        self.quiesce()
        # Both searches read the same nbinfra-written collection, so only the path differs.
        self._check_same_answers("nb_up")
        from nbinfra.connections import SyncConnection

        facade = SyncConnection(self.store)

        async def raw_on_loop(qs: Any) -> None:
            for v in qs:
                self.raw_search("nb_up", v)

        contenders: dict[str, Callable[[Any], object]] = {
            "raw client": lambda qs: [self.raw_search("nb_up", v) for v in qs],
            "nbinfra": lambda qs: self.await_nb(self.nb_searches("nb_up", qs)),
            "nbinfra facade": lambda qs: [facade.search("nb_up", v, TOP_K) for v in qs],
            # The raw client's calls made on the thread nbinfra's calls run on: what the
            # thread alone costs an in-process engine (the allocator serves a non-main
            # thread from another arena), apart from anything nbinfra does.
            RAW_ON_LOOP: lambda qs: self.wait(raw_on_loop(qs)),
        }
        search: dict[str, list[float]] = {k: [] for k in contenders}
        # The queries in chunks, every contender on each chunk in turn (rotating who goes
        # first), so load on the machine hits all of them alike.
        size = max(1, q // 20)  # twenty timed samples per contender
        chunks = [d.queries[i : i + size] for i in range(0, q, size)]
        order = list(contenders)
        for index, chunk in enumerate(chunks):
            shift = index % len(order)
            for key in order[shift:] + order[:shift]:
                search[key].append(_timed(lambda f=contenders[key], c=chunk: f(c)) / len(chunk))
        facade.close()  # the facade's calls opened the manager on nbinfra's loop
        return [
            _comparison(
                self.name,
                "upsert",
                f"{n:,} x {DIM}-dim points, batches of {BATCH}",
                upsert,
                "points/s",
            ),
            _comparison(
                self.name,
                "search",
                f"{q:,} top-{TOP_K} cosine searches over {n:,}",
                search,
                "searches/s",
            ),
        ]

    def _check_same_answers(self, name: str) -> None:
        vector = self.data.queries[0]
        raw = [str(x) for x in self.raw_search(name, vector)]
        ours = [h.id for h in self.wait(self.store.search(name, vector, TOP_K))]
        if raw != ours:
            raise AssertionError(f"{self.name}: raw and nbinfra answers differ: {raw} vs {ours}")


def _timed(fn: Callable[[], object]) -> float:
    settle()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _comparison(
    backend: str, op: str, workload: str, samples: dict[str, list[float]], unit: str
) -> Comparison:
    rates = {k: 1.0 / statistics.median(v) for k, v in samples.items()}
    notes = ", ".join(f"{k} {r:,.0f} {unit}" for k, r in rates.items())
    return Comparison(
        area="vector",
        name=f"{backend} {op}",
        workload=workload,
        samples=samples,
        nbinfra="nbinfra",
        baseline="raw client",
        max_ratio=1.2,
        notes=notes,
        extra={f"{k} {unit}": r for k, r in rates.items()},
        limits=_LIMITS.get((backend.split()[0], op), ""),
    )


# What bounds the overhead, shown in the report when a target is missed.
_WRAPPER = (
    "the manager's per-call work on top of the engine call: query-vector validation, "
    "the collection-info lookup, the time limit and error translation, and building the "
    "hits; it is fixed per search, so it weighs most on the fastest engines"
)
_LIMITS = {
    ("qdrant", "search"): (
        "not nbinfra's work: the local engine allocates and normalises a copy of the whole "
        "collection per search; on any thread but the main one glibc serves those 15 MB "
        "temporaries from another malloc arena (20-50% here, the row 'raw client on "
        "nbinfra's loop thread'), which is why nbinfra runs in-process engines on the "
        "caller's thread. Callgrind counts no more "
        "instructions per search for nbinfra than for the raw client (1.34-1.72 G vs "
        "1.42-1.77 G over four phases)"
    ),
    ("chromadb", "search"): _WRAPPER,
    ("pgvector", "search"): (
        "on a ~1.5 ms query that is mostly the server's time: psycopg's async driver "
        "(raw: sync psycopg on the caller's thread; about 5% by itself here), the pool "
        "checkout and the manager's per-call work. Client-side, callgrind counts about "
        "646k instructions per nbinfra search, 542k for the bare async driver on one "
        "connection, 623k for it behind psycopg_pool and 401k for sync psycopg"
    ),
}


# -- Qdrant ------------------------------------------------------------------------------------
class QdrantBench(Bench):
    name = "qdrant (local :memory:)"
    awaited_here = True
    min_upsert_rounds = 7  # about 1.5 s a round

    def __init__(self, data: Data) -> None:
        super().__init__(data)
        from qdrant_client import QdrantClient

        from nbinfra.connections.qdrant import QdrantConnectionManager

        self.raw = QdrantClient(":memory:")
        self.store = QdrantConnectionManager(location=":memory:")
        self.wait(self.store.connect())

    def raw_reset(self, name: str) -> None:
        from qdrant_client import models

        if self.raw.collection_exists(name):
            self.raw.delete_collection(name)
        params = models.VectorParams(size=DIM, distance=models.Distance.COSINE)
        self.raw.create_collection(name, vectors_config=params)

    def raw_upsert(self, name: str) -> None:
        from qdrant_client import models

        d = self.data
        for start in range(0, len(d.ids), BATCH):
            stop = start + BATCH
            batch = models.Batch(
                ids=d.ids[start:stop],
                vectors=d.vectors[start:stop].tolist(),
                payloads=d.payloads[start:stop],
            )
            self.raw.upsert(name, points=batch, wait=True)

    def raw_search(self, name: str, vector: Any) -> list[Any]:
        # The raw client reads the manager's collection (same in-process engine).
        response = self.store.client.query_points(name, query=vector, limit=TOP_K)
        return [p.id for p in response.points]

    def close(self) -> None:
        self.raw.close()
        super().close()


# -- Chroma ------------------------------------------------------------------------------------
class ChromaBench(Bench):
    name = "chromadb (persistent)"
    awaited_here = True

    def __init__(self, data: Data) -> None:
        super().__init__(data)
        import chromadb
        from chromadb.config import Settings

        from nbinfra.connections.chromadb import ChromaConnectionManager

        self.dir = tempfile.mkdtemp(prefix="nbinfra-bench-chroma-")
        self.raw = chromadb.PersistentClient(
            path=self.dir, settings=Settings(anonymized_telemetry=False)
        )
        self.store = ChromaConnectionManager(path=self.dir)
        self.wait(self.store.connect())

    def raw_reset(self, name: str) -> None:
        from chromadb.errors import NotFoundError

        with contextlib.suppress(NotFoundError):
            self.raw.delete_collection(name)
        self.raw.create_collection(
            name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )

    def raw_upsert(self, name: str) -> None:
        d = self.data
        col = self.raw.get_collection(name, embedding_function=None)
        for start in range(0, len(d.ids), BATCH):
            stop = start + BATCH
            col.upsert(
                ids=d.str_ids[start:stop],
                embeddings=d.vectors[start:stop],
                metadatas=d.payloads[start:stop],
            )

    def raw_search(self, name: str, vector: Any) -> list[Any]:
        col = self.raw.get_collection(name, embedding_function=None)
        result = col.query(
            query_embeddings=[vector], n_results=TOP_K, include=["metadatas", "distances"]
        )
        return list(result["ids"][0])

    def close(self) -> None:
        super().close()
        self.raw.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# -- pgvector ----------------------------------------------------------------------------------
class PgVectorBench(Bench):
    name = "pgvector (embedded PostgreSQL, HNSW)"

    def __init__(self, data: Data) -> None:
        super().__init__(data)
        import psycopg
        from pgvector.psycopg import register_vector

        from benchmarks import services
        from nbinfra.connections.pgvector import PgVectorConnectionManager

        self.server = services.postgres()  # shared by the run's areas
        self.store = PgVectorConnectionManager(url=self.server.url)
        self.wait(self.store.connect())  # creates the extension
        self.raw = psycopg.connect(self.server.url, autocommit=True)
        register_vector(self.raw)

    def raw_reset(self, name: str) -> None:
        self.raw.execute(f"DROP TABLE IF EXISTS {name}")
        self.raw.execute(
            f"CREATE TABLE {name} (id text PRIMARY KEY, embedding vector({DIM}) NOT NULL, "
            "payload jsonb NOT NULL DEFAULT '{}')"
        )
        self.raw.execute(f"CREATE INDEX ON {name} USING hnsw (embedding vector_cosine_ops)")

    def raw_upsert(self, name: str) -> None:
        from psycopg.types.json import Jsonb

        d = self.data
        query = (
            f"INSERT INTO {name} (id, embedding, payload) VALUES (%s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET embedding = EXCLUDED.embedding, "
            "payload = EXCLUDED.payload"
        )
        for start in range(0, len(d.ids), BATCH):
            stop = start + BATCH
            rows = [
                (d.str_ids[i], d.vectors[i], Jsonb(d.payloads[i]))
                for i in range(start, stop)
                if i < len(d.ids)
            ]
            with self.raw.transaction(), self.raw.cursor() as cur:
                cur.executemany(query, rows)

    def quiesce(self) -> None:
        # The upserts left dead row versions in both tables; autovacuum would clean them
        # (HNSW index included, seconds of server work) in the middle of the searches.
        for name in ("raw_up", "nb_up"):
            self.raw.execute(f"VACUUM ANALYZE {name}")
        self.raw.execute("CHECKPOINT")

    def raw_search(self, name: str, vector: Any) -> list[Any]:
        rows = self.raw.execute(
            f"SELECT id, payload, embedding <=> %s FROM {name} ORDER BY embedding <=> %s LIMIT %s",
            (vector, vector, TOP_K),
        ).fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        for name in ("raw_up", "nb_up"):
            self.raw.execute(f"DROP TABLE IF EXISTS {name}")
        self.raw.close()
        super().close()
