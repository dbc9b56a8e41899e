"""Response cache and replay: a notebook that calls an LLM re-runs offline, identically.

A ``ResponseStore`` sits in front of every provider call (``BaseLLMProvider.generate`` asks
``self.response_store``). Its ``mode``:

- ``off``: no effect;
- ``cache``: a stored response for the same request is returned, else the provider is
  called and its response stored;
- ``record``: the provider is always called and every response stored;
- ``replay``: stored responses only; a request never seen raises ``ReplayMissError`` and
  nothing reaches the network.

A request is ``{"provider", "model", "messages", "options"}``; its key is a sha256 of that
mapping as canonical JSON (options that do not change the answer, like ``timeout``, left
out). ``export_jsonl`` writes what was recorded, one JSON object a line, and
``import_jsonl`` loads it into a fresh store, e.g. in CI or on a machine without keys::

    store = use_response_store("replay", path="notebook-llm.jsonl")
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from nbinfra.errors import NbinfraError, ReplayMissError
from nbinfra.llm.types import LLMResponse, Message, Usage
from nbinfra.logs import get_logger

if TYPE_CHECKING:
    from nbinfra.session import Session

__all__ = [
    "MODES",
    "STATE_KEY",
    "KeyValueStore",
    "MemoryKeyValueStore",
    "Mode",
    "ResponseStore",
    "build_request",
    "request_key",
    "response_from_dict",
    "response_to_dict",
    "through_store",
    "use_response_store",
]

log = get_logger(__name__)

Mode = Literal["off", "cache", "record", "replay"]
MODES: tuple[str, ...] = ("off", "cache", "record", "replay")
STATE_KEY = "llm.response_store"  # where providers find the active store in session.state
NAMESPACE = "llm.responses"
FORMAT_VERSION = 1

# Options that change how a call is made, not what it answers.
_TRANSPORT_OPTIONS = frozenset(
    {"timeout", "request_timeout", "stream", "retries", "max_retries", "api_key", "base_url"}
)


class KeyValueStore(Protocol):
    """The part of ``CacheService`` the store needs (``MemoryKeyValueStore`` for tests)."""

    async def get(self, key: str) -> Any: ...

    async def set(self, key: str, value: Any, ttl: float | None = None) -> Any: ...


class MemoryKeyValueStore:
    """A dict behind the ``KeyValueStore`` protocol (the default, per process)."""

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}

    async def get(self, key: str) -> Any:
        return self._data.get(key)

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        self._data[key] = value

    def __len__(self) -> int:
        return len(self._data)


def build_request(
    provider: str,
    model: str,
    messages: Sequence[Message | Mapping[str, Any]],
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The request mapping the store keys on (messages as plain dicts)."""
    return {
        "provider": str(provider),
        "model": model,
        "messages": [m.to_dict() if isinstance(m, Message) else dict(m) for m in messages],
        "options": dict(options or {}),
    }


def request_key(request: Mapping[str, Any]) -> str:
    """A stable hash of provider, model, messages and the options that shape the answer."""
    options = request.get("options") or {}
    canonical = {
        "provider": str(request.get("provider", "")),
        "model": request.get("model"),
        "messages": [
            {k: v for k, v in dict(m).items() if v is not None} for m in request.get("messages", [])
        ],
        "options": {
            k: v for k, v in options.items() if k not in _TRANSPORT_OPTIONS and v is not None
        },
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def response_to_dict(response: LLMResponse) -> dict[str, Any]:
    """A JSON-ready copy of ``response`` (``raw`` is left out: SDK objects do not serialise)."""
    return {
        "content": response.content,
        "model": response.model,
        "provider": str(response.provider),
        "finish_reason": response.finish_reason,
        "usage": asdict(response.usage),
        "latency": response.latency,
        "time_to_first_token": response.time_to_first_token,
        "cost": response.cost,
        "options": _jsonable(response.options),
    }


def response_from_dict(data: Mapping[str, Any]) -> LLMResponse:
    usage = data.get("usage") or {}
    return LLMResponse(
        content=data["content"],
        model=data["model"],
        provider=data["provider"],
        finish_reason=data.get("finish_reason"),
        usage=Usage(**{k: usage[k] for k in _USAGE_FIELDS if k in usage}),
        latency=float(data.get("latency") or 0.0),
        time_to_first_token=data.get("time_to_first_token"),
        cost=data.get("cost"),
        options=dict(data.get("options") or {}),
    )


_USAGE_FIELDS = ("input_tokens", "output_tokens", "exact")


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return result


class ResponseStore:
    """Cache, record and replay LLM responses (see the module docstring)."""

    def __init__(
        self,
        mode: Mode = "cache",
        kv: KeyValueStore | None = None,
        *,
        ttl: float | None = None,
        namespace: str = NAMESPACE,
        session: Session | None = None,
    ) -> None:
        self.mode = mode
        self._kv = kv
        self.ttl = ttl
        self.namespace = namespace
        self._session = session
        self._entries: dict[str, dict[str, Any]] = {}  # key -> {"request", "response"}
        self.hits = 0
        self.misses = 0
        self.stored = 0

    @property
    def kv(self) -> KeyValueStore:
        """Where responses live: the given store, else ``CacheService(namespace)`` (made on
        first use, so the configured cache backend applies: memory, or Redis to share
        recordings between kernels). Responses do not expire unless ``ttl`` says so."""
        if self._kv is None:
            from nbinfra.cache import CacheService

            default_ttl = 0 if self.ttl is None else self.ttl
            self._kv = CacheService(self.namespace, default_ttl, session=self._session)
        return self._kv

    @property
    def mode(self) -> Mode:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(
                f"Unknown response store mode {value!r}; use one of {', '.join(MODES)}."
            )
        self._mode: Mode = value  # type: ignore[assignment]

    async def get(self, request: dict[str, Any]) -> LLMResponse | None:
        """The stored response for ``request``, or None when the provider should be called.

        In replay mode a miss raises ``ReplayMissError`` instead.
        """
        if self._mode in ("off", "record"):
            return None
        key = request_key(request)
        data = await self.kv.get(key)
        if data is None:
            self.misses += 1
            if self._mode == "replay":
                raise ReplayMissError(
                    f"Replay mode: no recorded response for {request.get('provider')}/"
                    f"{request.get('model')} (request {key[:12]}). Record it with "
                    "mode='record' and export_jsonl(), or import the recording with "
                    "import_jsonl(path).",
                    provider=str(request.get("provider")),
                )
            return None
        self.hits += 1
        response = response_from_dict(data.get("response", data))
        return replace(response, cached=True, usage=replace(response.usage, cached=True))

    async def put(self, request: dict[str, Any], response: LLMResponse) -> None:
        """Store ``response`` for ``request`` (cache and record modes)."""
        if self._mode not in ("cache", "record"):
            return
        key = request_key(request)
        entry = {"request": _jsonable(request), "response": response_to_dict(response)}
        await self.kv.set(key, entry, ttl=self.ttl)
        self._entries[key] = entry
        self.stored += 1

    def __len__(self) -> int:
        return len(self._entries)

    def export_jsonl(self, path: str | Path) -> int:
        """Write every response recorded or imported here to ``path``; returns how many."""
        target = Path(path).expanduser()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NbinfraError(
                f"Cannot create {target.parent} for the recording ({exc.strerror}); "
                "choose a writable path."
            ) from exc
        tmp = target.with_name(target.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for key, entry in self._entries.items():
                line = {"version": FORMAT_VERSION, "key": key, **entry}
                fh.write(json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n")
        tmp.replace(target)  # a crash mid-write leaves the previous file whole
        return len(self._entries)

    async def import_jsonl(self, path: str | Path) -> int:
        """Load responses exported by ``export_jsonl``; returns how many."""
        source = Path(path)
        loaded = await asyncio.to_thread(_read_recording, source)
        for key, entry in loaded:
            await self.kv.set(key, entry, ttl=self.ttl)
            self._entries[key] = entry
        log.info("Imported %d recorded LLM responses from %s", len(loaded), source.name)
        return len(loaded)

    def __repr__(self) -> str:
        return (
            f"ResponseStore(mode={self._mode!r}, entries={len(self._entries)}, "
            f"hits={self.hits}, misses={self.misses})"
        )


def _read_recording(source: Path) -> list[tuple[str, dict[str, Any]]]:
    if not source.is_file():
        raise FileNotFoundError(f"No recorded LLM responses at {source}.")
    loaded: list[tuple[str, dict[str, Any]]] = []
    with source.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                entry = {"request": data["request"], "response": data["response"]}
                response_from_dict(entry["response"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(
                    f"{source}:{number} is not a recorded LLM response ({exc}); "
                    "re-export it with ResponseStore.export_jsonl()."
                ) from exc
            # re-keyed from the request, so a recording made under another key scheme still hits
            loaded.append((request_key(entry["request"]), entry))
    return loaded


async def through_store(
    store: ResponseStore | None,
    request: dict[str, Any],
    call: Callable[[], Awaitable[LLMResponse]],
) -> LLMResponse:
    """Serve ``request`` from ``store`` when it can, else ``call()`` the provider and store it."""
    if store is None or store.mode == "off":
        return await call()
    cached = await store.get(request)
    if cached is not None:
        return cached
    response = await call()
    await store.put(request, response)
    return response


def use_response_store(
    mode: Mode = "cache",
    path: str | Path | None = None,
    *,
    kv: KeyValueStore | None = None,
    session: Any = None,
) -> ResponseStore:
    """Create a store, import ``path`` if given, and make it the session's active store.

    Providers created afterwards in that session consult it. Synchronous, for notebooks.
    """
    from nbinfra._loop import run_sync
    from nbinfra.session import session as current_session

    target = session or current_session()
    store = ResponseStore(mode, kv, session=target)
    if path is not None:
        run_sync(store.import_jsonl(path))
    target.state[STATE_KEY] = store
    return store
