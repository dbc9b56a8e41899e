"""Live configuration: what following files and variables costs on every access.

A session whose settings are live compares, on each use of an instance, the variables
under the setting paths the instance read (``os.environ`` lookups) and, at most every
0.2 s, stats its files. The contenders are the same calls on a session given the same
settings by hand (nothing followed).
"""

from __future__ import annotations

import os
from typing import Any

from benchmarks.harness import Comparison, interleave
from nbinfra.cache.factory import build_provider
from nbinfra.config import load_settings
from nbinfra.config_sources import load_live
from nbinfra.session import Session, use_session

AREA = "config"


def run(smoke: bool = False) -> list[Comparison]:
    ops = 500 if smoke else 20_000
    rounds = 3 if smoke else 9
    os.environ.pop("NBINFRA_CACHE_BACKEND", None)
    live, fixed = Session(), Session(load_settings())
    try:
        return [
            _instance_access(live, fixed, ops, rounds),
            _facade(live, fixed, ops, rounds),
            _stat(ops // 20, rounds),
        ]
    finally:
        live.close()
        fixed.close()


def _instance_access(live: Session, fixed: Session, ops: int, rounds: int) -> Comparison:
    def make(sess: Session) -> Any:
        return sess.get("cache", "redis", lambda: build_provider("redis", sess.settings))

    def loop(sess: Session) -> None:
        for _ in range(ops):
            make(sess)

    make(live), make(fixed)
    watched = len(live._deps[("cache", "redis")].env)
    samples = interleave(
        {"live session.get": lambda: loop(live), "fixed session.get": lambda: loop(fixed)},
        rounds=rounds,
        ops=ops,
    )
    return Comparison(
        area=AREA,
        name="instance access (redis cache provider)",
        workload=f"{ops} session.get hits per round; the provider reads {watched} variables",
        samples=samples,
        nbinfra="live session.get",
        baseline="fixed session.get",
        max_excess=3e-6,
        unit="s/access",
        notes="the excess is the per-access check: one os.environ lookup per variable the "
        "instance's settings name, and a clock read for the file stat interval",
    )


def _facade(live: Session, fixed: Session, ops: int, rounds: int) -> Comparison:
    import nbinfra

    def loop(sess: Session) -> None:
        with use_session(sess):
            for _ in range(ops):
                nbinfra.cache("bench").get("k")

    for sess in (live, fixed):
        with use_session(sess):
            nbinfra.cache("bench").set("k", 1)
    samples = interleave(
        {"live nbinfra.cache(ns).get": lambda: loop(live), "fixed": lambda: loop(fixed)},
        rounds=rounds,
        ops=ops,
    )
    return Comparison(
        area=AREA,
        name="nbinfra.cache(ns).get on the memory cache, handle made per call",
        workload=f"{ops} nbinfra.cache('bench').get('k') per round (a new handle each time)",
        samples=samples,
        nbinfra="live nbinfra.cache(ns).get",
        baseline="fixed",
        max_excess=3e-6,
        unit="s/call",
        notes="each call checks the cache settings (cache.backend, default_ttl, serializer, "
        "stats_window) and the memory provider's own",
    )


def _stat(ops: int, rounds: int) -> Comparison:
    _settings, sources = load_live()

    def loop() -> None:
        for _ in range(ops):
            sources.changed()

    samples = interleave({"Sources.changed()": loop}, rounds=rounds, ops=ops)
    return Comparison(
        area=AREA,
        name="full sources check (at most every 0.2 s)",
        workload=f"{ops} checks per round: stat every configuration and .env candidate, "
        f"compare {len(sources.env)} variables",
        samples=samples,
        nbinfra="Sources.changed()",
        max_seconds=1e-3,
        unit="s/check",
        notes="run at most once per 0.2 s per session: a 1 ms check would be 0.5% of one "
        "core; most of it is the resources folder search (Path.resolve on each candidate)",
    )
