"""Masked settings reprs and redacted cause chains: no known secret in any traceback."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field

import pytest

from nbinfra._secrets import MASK, MaskedRepr, RedactedError, Secret, remember, scrub_chain
from nbinfra.errors import CacheUnavailableError, NbinfraError

SECRET = "pw-7c1d-never-shown"


@pytest.fixture(autouse=True)
def _known() -> None:
    remember(SECRET)


class VendorError(Exception):
    """Like an SDK error: the secret in args, attributes, a body dict and a handle."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.body = {"error": {"message": message}, "codes": [message.encode()]}
        self.handle = Handle()


class Handle:
    def __repr__(self) -> str:
        return f"<Handle password={SECRET}>"


class Computed(Exception):
    """Its text comes from hidden state that scrubbing cannot reach."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"login with {SECRET} failed"


def _text(exc: BaseException) -> str:
    parts = ["".join(traceback.format_exception(exc))]
    link: BaseException | None = exc
    while link is not None:
        parts += [repr(link), str(link), repr(vars(link)) if hasattr(link, "__dict__") else ""]
        link = link.__cause__ or link.__context__
    return "\n".join(parts)


def _boundary(inner: BaseException) -> NbinfraError:
    try:
        try:
            raise inner
        except Exception as exc:
            raise CacheUnavailableError(f"cache down ({exc})") from exc
    except NbinfraError as err:
        return err


def test_an_error_raised_from_a_vendor_exception_carries_a_clean_chain() -> None:
    err = _boundary(VendorError(f"bad key {SECRET}"))
    assert SECRET not in _text(err)
    cause = err.__cause__
    assert isinstance(cause, VendorError)  # kept, scrubbed in place
    assert cause.message == f"bad key {MASK}" and cause.handle is None
    assert cause.body == {
        "error": {"message": f"bad key {MASK}"},
        "codes": [f"bad key {MASK}".encode()],
    }


def test_os_errors_and_notes_are_scrubbed() -> None:
    inner = OSError(111, f"refused for {SECRET}", f"/run/{SECRET}.sock")
    inner.__notes__ = [f"while sending {SECRET}"]  # what add_note() stores
    err = _boundary(inner)
    assert SECRET not in _text(err)
    assert isinstance(err.__cause__, OSError) and err.__cause__.errno == 111


def test_a_link_whose_text_cannot_be_scrubbed_is_replaced() -> None:
    deep = Computed()
    middle = ValueError("wrapper")
    middle.__cause__ = deep
    err = _boundary(middle)
    text = _text(err)
    assert SECRET not in text
    replaced = err.__cause__.__cause__ if err.__cause__ is not None else None
    assert isinstance(replaced, RedactedError)
    assert str(replaced) == f"{__name__}.Computed: login with {MASK} failed"
    assert "test_redaction.py" in "".join(traceback.format_exception(err))  # traceback kept


def test_cycles_and_unknown_values_are_left_alone() -> None:
    a, b = ValueError("a"), ValueError("b")
    a.__context__, b.__context__ = b, a
    scrub_chain(a)
    assert str(a) == "a" and str(b) == "b"
    scrub_chain(None)


@dataclass
class Base(MaskedRepr):
    url: str = ""
    api_key: str = ""


@dataclass
class Child(Base):
    token: Secret = field(default_factory=lambda: Secret(""))
    hidden: str = field(default="", repr=False)
    options: dict[str, str] = field(default_factory=dict)
    inner: Base = field(default_factory=Base)


def test_settings_reprs_mask_every_secret_at_every_level() -> None:
    value = Child(
        url=f"redis://u:{SECRET}@h:1/0",
        api_key="plain-but-a-key",
        token=Secret("tok-12345"),
        hidden="x",
        options={"password": "opt-pass-1", "note": f"see {SECRET}"},
        inner=Base(url=f"postgresql://a:{SECRET}@db/x?password=q"),
    )
    shown = repr(value)
    for secret in (SECRET, "plain-but-a-key", "tok-12345", "opt-pass-1", "hidden"):
        assert secret not in shown
    assert shown.startswith("Child(url='redis://u:********@h:1/0', api_key='********'")
    assert "inner=Base(url='postgresql://a:********@db/x?password=********'" in shown
