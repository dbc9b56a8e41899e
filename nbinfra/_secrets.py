"""Secret values: a wrapper that never prints itself, and redaction of known secrets.

Every secret loaded from configuration is remembered (in this process only) so that
``redact`` can scrub it from any text: error messages, log lines, widget state, magic
output. ``Secret`` hides its value from ``str``/``repr``; call ``reveal()`` at the one
place that hands it to a driver or SDK.
"""

from __future__ import annotations

import contextlib
import re
import threading
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

MASK = "********"

# Key names whose values are secrets, matched on the last path component.
_SECRET_KEY = re.compile(
    r"(^|_)(password|passwd|pwd|secret|token|api_?key|access_?key|secret_?key|private_?key|"
    r"credentials?|auth|hmac_?key|signing_?key|sas)$",
    re.IGNORECASE,
)
_MIN_SECRET_LEN = 4  # shorter strings would redact ordinary words

_lock = threading.Lock()
_known: set[str] = set()
_pattern: re.Pattern[str] | None = None


class Secret:
    """A string that shows as ``********`` everywhere except through ``reveal()``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        remember(value)

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __repr__(self) -> str:
        return f"Secret({MASK!r})" if self._value else "Secret('')"

    def __str__(self) -> str:
        return MASK if self._value else ""


def reveal(value: str | Secret | None) -> str | None:
    """The plain value of a ``Secret`` (or the string itself); ``None`` stays ``None``."""
    if isinstance(value, Secret):
        return value.reveal()
    return value


def is_secret_key(key: str) -> bool:
    """True when a setting called ``key`` holds a secret (password, api_key, token, ...)."""
    return bool(_SECRET_KEY.search(key))


def remember(value: str) -> None:
    """Register ``value`` so that ``redact`` scrubs it from any text from now on."""
    global _pattern
    if not value or len(value) < _MIN_SECRET_LEN or value in _known:
        return
    with _lock:
        _known.add(value)
        ordered = sorted(_known, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(v) for v in ordered))


def remember_url(url: str) -> None:
    """Register the password (and user:password) of a URL with credentials."""
    password = _url_password(url)
    if password:
        remember(password)


def redact(text: str) -> str:
    """``text`` with every remembered secret replaced by ``********``."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(MASK, text)


def _url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def mask_url(url: str) -> str:
    """``url`` with its password (and secret-looking query parameters) masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    netloc = parts.netloc
    if parts.password:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{hostinfo}"
    query = parts.query
    if query:
        pieces = []
        for piece in query.split("&"):
            name, sep, _value = piece.partition("=")
            pieces.append(f"{name}={MASK}" if sep and is_secret_key(name) else piece)
        query = "&".join(pieces)
    if netloc == parts.netloc and query == parts.query:
        return redact(url)  # nothing to mask: as written (urlunsplit drops "////" slashes)
    masked = SplitResult(parts.scheme, netloc, parts.path, query, parts.fragment)
    return redact(urlunsplit(masked))


class MaskedRepr:
    """Mixin for settings dataclasses: ``repr`` masks secret fields and URL passwords.

    Subclasses get this ``__repr__`` before ``@dataclass`` runs, so the generated one
    (which would print every field as is) never replaces it.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__repr__" not in cls.__dict__:
            cls.__repr__ = MaskedRepr.__repr__  # type: ignore[method-assign]

    def __repr__(self) -> str:
        import dataclasses

        if dataclasses.is_dataclass(self):
            names = [f.name for f in dataclasses.fields(self) if f.repr]
        else:
            names = list(vars(self))
        parts = [f"{n}={masked_value(n, getattr(self, n, None))!r}" for n in names]
        return redact(f"{type(self).__qualname__}({', '.join(parts)})")


class _Shown(str):
    """Text that ``repr`` shows bare (a nested settings repr inside a masked one)."""

    def __repr__(self) -> str:
        return str(self)


def masked_value(key: str, value: Any) -> Any:
    """``value`` as it may be shown under setting ``key``: secrets and URL passwords masked."""
    if isinstance(value, str):
        if value and is_secret_key(key):
            return MASK
        return mask_url(value) if "://" in value else redact(value)
    if isinstance(value, dict):
        return {k: masked_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(masked_value(key, v) for v in value)
    if isinstance(value, (Secret, MaskedRepr)) or value is None:
        return _Shown(repr(value)) if value is not None else None
    if isinstance(value, (int, float, bool)):
        return value
    return _Shown(redact(repr(value)))


# -- cause chains ------------------------------------------------------------------------
_PLAIN = (str, bytes, int, float, bool, type(None))
_OS_TEXT = ("strerror", "filename", "filename2")


class RedactedError(Exception):
    """Stands in a cause chain for a vendor exception whose text kept a secret after
    scrubbing; its message names the original type and carries the redacted text."""


def _leaks(text: str) -> bool:
    return redact(text) != text


def _shows_secret(value: Any) -> bool:
    try:
        return _leaks(value if isinstance(value, str) else repr(value))
    except Exception:  # noqa: BLE001 - an object whose repr fails shows nothing
        return False


def _scrub_value(value: Any) -> Any:
    """``value`` with known secrets redacted: strings in place, containers copied, other
    objects showing a secret replaced by ``None`` (a dropped connection handle, say)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
        return redact(text).encode() if _leaks(text) else value
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, dict):
        return {_scrub_value(k): _scrub_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return type(value)(_scrub_value(v) for v in value)
    return None if _shows_secret(value) else value


def _scrub_one(exc: BaseException) -> None:
    if _shows_secret(exc.args):
        with contextlib.suppress(AttributeError, TypeError):
            exc.args = tuple(_scrub_value(a) for a in exc.args)
    for name, value in list(getattr(exc, "__dict__", {}).items()):
        if _shows_secret(value):
            with contextlib.suppress(AttributeError, TypeError):
                setattr(exc, name, _scrub_value(value))
    if isinstance(exc, OSError):
        for name in _OS_TEXT:
            value = getattr(exc, name, None)
            if isinstance(value, str) and _leaks(value):
                setattr(exc, name, redact(value))
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        exc.__notes__ = [redact(n) if isinstance(n, str) else n for n in notes]


def _stand_in(exc: BaseException) -> BaseException:
    """``exc`` itself when it shows no secret now, else a ``RedactedError`` in its place."""
    try:
        shown = f"{exc!r}\n{exc}"
    except Exception:  # noqa: BLE001 - unprintable: nothing can leak through its text
        return exc
    if not _leaks(shown):
        return exc
    kind = type(exc)
    text = redact(str(exc)) if not _leaks(redact(str(exc))) else MASK
    new = RedactedError(f"{kind.__module__}.{kind.__qualname__}: {text}")
    new.__traceback__ = exc.__traceback__
    new.__cause__, new.__context__ = exc.__cause__, exc.__context__
    new.__suppress_context__ = exc.__suppress_context__
    return new


def scrub_chain(exc: BaseException | None) -> None:
    """Redact every known secret from ``exc`` and its ``__cause__``/``__context__`` chain,
    in place, so a plain ``traceback.format_exception`` shows none. A linked exception
    whose text still shows one is replaced in the chain by a ``RedactedError``."""
    if exc is None or _pattern is None:
        return
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        _scrub_one(item)
        for attr in ("__cause__", "__context__"):
            linked = getattr(item, attr)
            if linked is None:
                continue
            _scrub_one(linked)
            replaced = _stand_in(linked)
            if replaced is not linked:
                setattr(item, attr, replaced)
            stack.append(replaced)
        stack.extend(getattr(item, "exceptions", ()))  # exception groups
