"""Secret values: a wrapper that never prints itself, and redaction of known secrets.

Every secret loaded from configuration is remembered (in this process only) so that
``redact`` can scrub it from any text: error messages, log lines, widget state, magic
output. ``Secret`` hides its value from ``str``/``repr``; call ``reveal()`` at the one
place that hands it to a driver or SDK.
"""

from __future__ import annotations

import re
import threading
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
    masked = SplitResult(parts.scheme, netloc, parts.path, query, parts.fragment)
    return redact(urlunsplit(masked))
