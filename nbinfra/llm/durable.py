"""A response store that survives the kernel: one JSON line per answer, appended and synced.

``FileKeyValueStore(path)`` is a ``KeyValueStore`` (``nbinfra.llm.replay``) over an
append-only JSONL file. Each ``set`` writes one whole line with a single ``write`` on a
file opened for appending, then flushes and ``fsync``\\ s it, so an answer is either in the
file or not: a kernel that dies mid-map keeps every answer that arrived, and a line cut by
a crash (the last one) is skipped when the file is read again. The file is read once, on
first use; the latest line for a key wins.

``map_store(session)`` is the store ``map`` writes to when no response store is active:
``ResponseStore("cache")`` over ``.nbinfra/llm-responses.jsonl`` in the working directory.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbinfra.errors import NbinfraError
from nbinfra.llm.replay import STATE_KEY, ResponseStore
from nbinfra.logs import get_logger

if TYPE_CHECKING:
    from nbinfra.session import Session

__all__ = ["DEFAULT_PATH", "FileKeyValueStore", "map_store"]

log = get_logger(__name__)

DEFAULT_PATH = Path(".nbinfra") / "llm-responses.jsonl"
MAP_STATE_KEY = "llm.map_store"


class FileKeyValueStore:
    """An append-only JSONL file of ``{"key", "value"}`` lines (module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path).expanduser()
        self.fsync = fsync
        self._data: dict[str, Any] | None = None
        self._clean = False  # the file is known to end with a whole line
        self._lock = threading.Lock()
        self.skipped = 0  # lines that could not be read (a cut last line)

    def _load(self) -> dict[str, Any]:
        data = self._data
        if data is None:
            data = {}
            if self.path.is_file():
                with self.path.open(encoding="utf-8") as fh:
                    for line in fh:
                        try:
                            item = json.loads(line)
                            data[item["key"]] = item["value"]
                        except (ValueError, KeyError, TypeError):
                            self.skipped += 1
            if self.skipped:
                log.warning("%s: skipped %d unreadable line(s)", self.path.name, self.skipped)
            self._data = data
        return data

    async def get(self, key: str) -> Any:
        return self._load().get(key)

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        line = json.dumps({"key": key, "value": value}, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            data = self._load()
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Opened per answer: nothing stays open between writes, and a file removed
                # meanwhile is simply started again.
                with self.path.open("a", encoding="utf-8") as fh:
                    if fh.tell() > 0 and not self._ends_with_newline():
                        fh.write("\n")  # end a line cut by a crash: it must not swallow this one
                    fh.write(line)
                    self._clean = True
                    fh.flush()
                    if self.fsync:
                        os.fsync(fh.fileno())
            except OSError as exc:
                raise NbinfraError(
                    f"Cannot write LLM answers to {self.path} ({exc.strerror}); pass "
                    "store=PATH with a writable path."
                ) from exc
            data[key] = value

    def _ends_with_newline(self) -> bool:
        if self._clean:
            return True
        with self.path.open("rb") as check:
            check.seek(-1, os.SEEK_END)
            self._clean = check.read(1) == b"\n"
        return self._clean

    def __len__(self) -> int:
        return len(self._load())

    def __repr__(self) -> str:
        return f"FileKeyValueStore({str(self.path)!r})"


def map_store(session: Session, path: str | os.PathLike[str] | None = None) -> ResponseStore:
    """The store ``map`` uses: ``path``'s file, else the session's active response store,
    else (made once per session) the durable default under ``.nbinfra/``."""
    if path is not None:
        return ResponseStore("cache", FileKeyValueStore(path), session=session)
    active: ResponseStore | None = session.state.get(STATE_KEY)
    if active is not None and active.mode != "off":
        return active
    found: ResponseStore | None = session.state.get(MAP_STATE_KEY)
    if found is None:
        kv = FileKeyValueStore(Path.cwd() / DEFAULT_PATH)
        found = session.state[MAP_STATE_KEY] = ResponseStore("cache", kv, session=session)
    return found
