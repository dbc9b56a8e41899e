"""The LLM error boundary is keyed by exception type, never by class name."""

from __future__ import annotations

import json

import httpx
import pytest

from nbinfra.errors import BadRequestError, LLMError, ProviderServerError, ProviderTimeout
from nbinfra.llm.base import BaseLLMProvider
from nbinfra.llm.boundary import ErrorMap, boundary, transport_map
from nbinfra.llm.fake import FakeLLMProvider


class Base(Exception):
    pass


class Specific(Base):
    pass


class ReadTimeoutLookalike(Exception):
    """Named like a timeout: a name-sniffing mapper would call it one."""


def bad(message: str) -> BadRequestError:
    return BadRequestError(message, provider="fake")


@pytest.fixture
def llm() -> BaseLLMProvider:
    return FakeLLMProvider(base_url="http://127.0.0.1:9/v1")


def test_the_most_specific_class_wins_whatever_the_order(llm: BaseLLMProvider) -> None:
    table = ErrorMap({Base: lambda p, e: bad("base"), Specific: lambda p, e: bad("specific")})
    assert str(table.translate(llm, Specific())) == "specific"
    assert str(table.translate(llm, Base())) == "base"
    assert table.translate(llm, ValueError()) is None


def test_chained_tables_ask_in_order_and_none_falls_through(llm: BaseLLMProvider) -> None:
    first = ErrorMap({Specific: lambda p, e: None if "skip" in str(e) else bad("first")})
    second = ErrorMap({Base: lambda p, e: bad("second")})
    both = first | second
    assert len(both) == 2
    assert str(both.translate(llm, Specific("x"))) == "first"
    assert str(both.translate(llm, Specific("skip"))) == "second"


@pytest.mark.parametrize(
    ("exc", "kind", "words"),
    [
        (httpx.ReadTimeout("slow"), ProviderTimeout, "did not answer"),
        (httpx.ConnectError("refused"), ProviderServerError, "Cannot reach fake at"),
        (httpx.RemoteProtocolError("cut"), ProviderServerError, "broke mid-response"),
        (ConnectionRefusedError(111, "refused"), ProviderServerError, "Cannot reach fake at"),
        (json.JSONDecodeError("x", "<html>", 0), ProviderServerError, "not valid JSON"),
        (TimeoutError(), ProviderTimeout, "did not answer"),
    ],
)
def test_transport_failures_by_type(
    llm: BaseLLMProvider, exc: Exception, kind: type[LLMError], words: str
) -> None:
    found = llm.translate_error(exc)
    assert type(found) is kind and words in str(found)
    assert "127.0.0.1:9" in str(found) or kind is ProviderTimeout


def test_a_name_is_not_a_type(llm: BaseLLMProvider) -> None:
    found = llm.translate_error(ReadTimeoutLookalike("no"))
    assert type(found) is ProviderServerError and "call failed: ReadTimeoutLookalike" in str(found)
    assert transport_map().translate(llm, ReadTimeoutLookalike()) is None


def test_boundary_raises_ours_from_the_original_and_lets_interrupts_through(
    llm: BaseLLMProvider,
) -> None:
    with pytest.raises(ProviderTimeout, match=r"within 0\.5 s") as info, boundary(llm, 0.5):
        raise httpx.ReadTimeout("slow")
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    ours = bad("already ours")
    with pytest.raises(BadRequestError) as same, boundary(llm):
        raise ours
    assert same.value is ours
    with pytest.raises(KeyboardInterrupt), boundary(llm):
        raise KeyboardInterrupt
