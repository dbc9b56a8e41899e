"""A kind registered from outside is read like a built-in: its key variable, its place in
the default order and its local server come from class attributes through the registry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

import nbinfra
from nbinfra.config import Settings
from nbinfra.errors import AuthenticationError
from nbinfra.llm import LLMFactory, LLMRegistry, factory
from nbinfra.llm.fake import FakeLLMProvider
from nbinfra.llm.openai import OpenAIProvider
from nbinfra.llm.settings import LLMSettings
from nbinfra.session import Session, use_session
from nbinfra.testing import LocalHTTPServer, free_port
from nbinfra.testing_llm import LLMWireServer

KEY = "acme-key-0123456789abcdef"
BUILT_IN_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GROQ_API_KEY", "GOOGLE_API_KEY")


class AcmeProvider(OpenAIProvider):
    """An OpenAI-wire provider as a plugin would write it: no line in any file."""

    kind: ClassVar[str] = "acme"
    env_key: ClassVar[str | None] = "ACME_API_KEY"
    default_rank: ClassVar[int | None] = None
    default_model: ClassVar[str] = "acme-1"


class LocalAcme(FakeLLMProvider):
    kind: ClassVar[str] = "localacme"
    stand_in: ClassVar[bool] = False
    default_rank: ClassVar[int | None] = 1


@pytest.fixture
def acme(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[AcmeProvider]]:
    for name in (*BUILT_IN_KEYS, "ACME_API_KEY", "OPENAI_BASE_URL", "NBINFRA_LLM"):
        monkeypatch.delenv(name, raising=False)
    LLMRegistry.register("acme", AcmeProvider)
    try:
        yield AcmeProvider
    finally:
        LLMRegistry.unregister("acme")


@pytest.fixture
def live(acme: type[AcmeProvider]) -> Iterator[Session]:
    fresh = Session()
    with use_session(fresh):
        yield fresh
    fresh.close()


@pytest.fixture
def wire() -> Iterator[LLMWireServer]:
    with LLMWireServer("openai") as server:
        yield server


def conf(environ: dict[str, str], **llm: Any) -> Settings:
    llm.setdefault("providers", {})
    return Settings.from_dict({"llm": llm}, environ=environ)


def test_the_class_env_key_is_read_when_no_file_names_a_key(
    live: Session, monkeypatch: pytest.MonkeyPatch, wire: LLMWireServer
) -> None:
    held = nbinfra.llm("acme", base_url=wire.base_url("openai"))
    with pytest.raises(AuthenticationError, match="set ACME_API_KEY"):
        held.generate("hi")
    monkeypatch.setenv("ACME_API_KEY", KEY)  # what the error said to do, after first use
    wire.push("hello from acme")
    assert nbinfra.llm("acme", base_url=wire.base_url("openai")).generate("hi").content == (
        "hello from acme"
    )
    assert wire.last("chat").headers.get("authorization") == f"Bearer {KEY}"
    wire.push("the handle made before follows too")
    assert held.generate("again").content == "the handle made before follows too"
    assert KEY not in repr(held) and KEY not in repr(held.llm.settings)


def test_api_key_env_names_another_variable() -> None:
    settings = conf({"MY_ACME": KEY}, providers={"acme": {"api_key_env": "MY_ACME"}})
    LLMRegistry.register("acme", AcmeProvider)
    try:
        llm = LLMFactory.create("acme", settings=settings)
        assert llm.settings.api_key.reveal() == KEY and llm.api_key_env == "MY_ACME"
        unset = LLMFactory.create("acme", settings=conf({"ACME_API_KEY": KEY}, providers={}))
        assert unset.settings.api_key.reveal() == KEY
        assert not LLMFactory.create("acme", settings=conf({})).settings.api_key
    finally:
        LLMRegistry.unregister("acme")


def test_changing_the_variable_rebuilds_the_sessions_instance(
    live: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACME_API_KEY", KEY)
    first = nbinfra.llm("acme").llm
    assert first.settings.api_key.reveal() == KEY
    assert nbinfra.llm("acme").llm is first  # nothing moved: the same instance
    monkeypatch.setenv("ACME_API_KEY", KEY + "-rotated")
    second = nbinfra.llm("acme").llm
    assert second is not first and second.settings.api_key.reveal() == KEY + "-rotated"


def test_default_order_comes_from_default_rank(acme: type[AcmeProvider]) -> None:
    keys = {"OPENAI_API_KEY": "sk-openai-0123456789", "ACME_API_KEY": KEY}
    both = conf(keys, providers={"openai": {"api_key": "${OPENAI_API_KEY:}"}})
    llm = LLMSettings.load(both)
    assert factory.select_default(llm, probe_local=False, settings=both).kind == "openai"
    acme.default_rank = 1  # a plugin may ask to come first
    try:
        assert next(c.kind for c in factory.default_order()) == "acme"
        chosen = factory.select_default(llm, probe_local=False, settings=both)
        assert chosen.kind == "acme" and "key is set" in chosen.reason
        only_acme = conf({"ACME_API_KEY": KEY})
        chosen = factory.select_default(
            LLMSettings.load(only_acme), probe_local=False, settings=only_acme
        )
        assert chosen.kind == "acme"
    finally:
        acme.default_rank = None
    assert "acme" not in [c.kind for c in factory.default_order()]


def test_a_keyless_kind_is_chosen_when_its_local_server_answers() -> None:
    LLMRegistry.register("localacme", LocalAcme)
    try:
        with LocalHTTPServer() as server:
            LocalAcme.default_base_url = server.url
            chosen = factory.select_default(LLMSettings.load(conf({})))
            assert chosen.kind == "localacme" and "answers at" in chosen.reason
        LocalAcme.default_base_url = f"http://127.0.0.1:{free_port()}"
        ollama = {"ollama": {"base_url": f"http://127.0.0.1:{free_port()}"}}
        assert factory.select_default(LLMSettings.load(conf({}, providers=ollama))).kind == "fake"
    finally:
        LLMRegistry.unregister("localacme")


def test_statuses_read_the_class(acme: type[AcmeProvider]) -> None:
    rows = {s.provider: s for s in factory.provider_statuses(conf({"ACME_API_KEY": KEY}))}
    assert rows["acme"].key_set and rows["acme"].default_model == "acme-1"
    assert not rows["openai"].key_set
    assert rows["ollama"].base_url == "http://127.0.0.1:11434"  # its default_base_url
    assert KEY not in repr(rows)


def test_every_factory_has_the_create_shape() -> None:
    made = LLMFactory.create("fake", model="tiny", settings=conf({}), temperature=0.2)
    seed = LLMFactory.get_llm("fake", "tiny", settings=conf({}), temperature=0.2)
    assert (made.kind, made.model) == (seed.kind, seed.model) == ("fake", "tiny")
    assert made.prepare("x", {})[1].temperature == 0.2
    assert factory.get_llm is not factory.create and factory.create("fake").kind == "fake"
