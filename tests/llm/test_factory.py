"""Provider selection (DESIGN.md section 5), specs, instances, statuses, the facade."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import nbinfra.llm
from nbinfra.config import Settings
from nbinfra.errors import AuthenticationError, UnknownKindError
from nbinfra.llm import LLMFactory, LLMProvider, LLMRegistry, factory
from nbinfra.llm.fake import FakeLLMProvider
from nbinfra.llm.settings import LLMSettings
from nbinfra.testing import LocalHTTPServer, free_port
from nbinfra.testing_llm import LLMWireServer, Reply

ROOT = Path(__file__).resolve().parents[2]


def settings(**llm: Any) -> Settings:
    llm.setdefault("providers", {})
    return Settings.from_dict({"llm": llm}, environ={})


def test_enum_has_the_seed_values_and_fake() -> None:
    assert [p.value for p in LLMProvider] == [
        "openai",
        "azure",
        "anthropic",
        "groq",
        "google",
        "huggingface",
        "ollama",
        "fake",
    ]
    assert issubclass(LLMProvider, str)


def test_builtin_rows_match_registered_classes() -> None:
    for kind in ("azure", "fake", "groq", "openai"):
        cls = LLMRegistry.get(kind)
        assert cls.kind == kind
        entry = LLMRegistry.entry(kind)
        assert entry is not None and entry.target == f"{cls.__module__}:{cls.__qualname__}"


def test_seed_usage_with_enum(nbinfra_session: Any) -> None:
    llm = LLMFactory.get_llm(LLMProvider.GROQ, settings=settings(), session=nbinfra_session)
    assert llm.provider == "groq" and llm.model == "llama-3.1-8b-instant"
    with pytest.raises(AuthenticationError, match="set GROQ_API_KEY"):
        llm.client  # noqa: B018 - creating the client needs the key


def test_provider_model_spec_and_ollama_style_tags(nbinfra_session: Any) -> None:
    conf = settings()
    llm = LLMFactory.get_llm("groq:llama-3.3-70b-versatile", settings=conf, session=nbinfra_session)
    assert (llm.provider, llm.model) == ("groq", "llama-3.3-70b-versatile")
    assert factory.resolve("fake:tiny:q4", LLMSettings.load(conf)).model == "tiny:q4"
    explicit = LLMFactory.get_llm("openai", "gpt-4.1", settings=conf, session=nbinfra_session)
    assert explicit.model == "gpt-4.1"


def test_named_instances(nbinfra_session: Any) -> None:
    conf = settings(
        instances={"fast_llm": {"provider": "fake", "model": "quick", "temperature": 0.1}}
    )
    llm = LLMFactory.get_llm("fast_llm", settings=conf, session=nbinfra_session)
    assert (llm.provider, llm.model, llm.name) == ("fake", "quick", "fast_llm")
    _, opts = llm.prepare("x", {})
    assert opts.temperature == 0.1
    assert "name=fast_llm" in repr(llm)


def test_unknown_spec_lists_kinds_and_suggests(nbinfra_session: Any) -> None:
    conf = settings(instances={"fast_llm": {"provider": "fake"}})
    with pytest.raises(UnknownKindError) as info:
        LLMFactory.get_llm("opnai", settings=conf, session=nbinfra_session)
    text = str(info.value)
    assert "Did you mean 'openai'" in text and "fast_llm" in text and "groq" in text


# -- default selection ----------------------------------------------------------------
def test_default_is_the_configured_one() -> None:
    chosen = factory.select_default(LLMSettings.load(settings(default="groq:llama-3.3-70b")))
    assert (chosen.kind, chosen.model, chosen.reason) == ("groq", "llama-3.3-70b", "llm.default")


def test_default_is_the_first_provider_whose_key_is_set() -> None:
    conf = settings(
        providers={"groq": {"api_key": "gsk-test-123456"}, "azure": {"api_key": "az-123456"}}
    )
    chosen = factory.select_default(LLMSettings.load(conf), probe_local=False)
    assert chosen.kind == "groq"  # azure's key alone is not enough: it needs an endpoint


@pytest.fixture
def ollama_kind() -> Iterator[None]:
    """Make sure an 'ollama' kind exists (the real one may live in another module)."""
    if "ollama" in LLMRegistry:
        yield
        return

    class Stand(FakeLLMProvider):
        kind = "ollama"

    LLMRegistry.register("ollama", Stand)
    try:
        yield
    finally:
        LLMRegistry.unregister("ollama")


def test_default_is_ollama_when_it_answers(ollama_kind: None) -> None:
    with LocalHTTPServer() as server:
        conf = settings(providers={"ollama": {"base_url": server.url}})
        assert factory.select_default(LLMSettings.load(conf)).kind == "ollama"
    closed = settings(providers={"ollama": {"base_url": f"http://127.0.0.1:{free_port()}"}})
    chosen = factory.select_default(LLMSettings.load(closed))
    assert chosen.kind == "fake" and "stand-in" in chosen.reason


def test_default_falls_back_to_fake_announced(
    nbinfra_session: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbinfra.llm import fake

    monkeypatch.setattr(fake, "_ANNOUNCED_IN", set())  # as in a fresh kernel
    conf = settings(providers={"ollama": {"base_url": f"http://127.0.0.1:{free_port()}"}})
    llm = LLMFactory.get_llm(settings=conf, session=nbinfra_session)
    assert llm.provider == "fake" and llm.stand_in
    llm.client  # noqa: B018 - first use announces
    assert "offline 'fake' LLM" in capsys.readouterr().out


# -- statuses -------------------------------------------------------------------------
def test_provider_statuses() -> None:
    with LocalHTTPServer() as server:
        conf = settings(
            providers={
                "openai": {"api_key": "sk-status-123456", "base_url": server.url + "/v1"},
                "groq": {"base_url": "https://user:hunter22-secret@groq.example/v1"},
            }
        )
        rows = {s.provider: s for s in factory.provider_statuses(conf, probe_reachability=True)}
    assert rows["openai"].key_set and rows["openai"].reachable is True
    assert rows["openai"].default_model == "gpt-4o-mini"
    assert not rows["groq"].key_set
    assert "hunter22-secret" not in rows["groq"].base_url and "****" in rows["groq"].base_url
    assert rows["fake"].key_set and rows["fake"].stand_in
    assert "sk-status-123456" not in repr(list(rows.values()))
    plain = factory.provider_statuses(conf)
    assert all(s.reachable is None for s in plain)


# -- the callable module and SyncLLM ---------------------------------------------------
def test_nbinfra_llm_is_callable_and_kept_per_session(nbinfra_session: Any) -> None:
    llm = nbinfra.llm("fake", respond=None)
    again = nbinfra.llm("fake", respond=None)
    assert llm.llm is again.llm
    resp = llm.generate("hello")
    assert "hello" in resp.content
    chunks = list(llm.stream("one two"))
    assert "".join(chunks).endswith("one two")
    events = list(llm.stream_events("x"))
    assert events[-1].final and sum(e.final for e in events) == 1
    assert llm.count_tokens("abc").tokens > 0
    assert len(llm.embed("abc")[0]) == 16
    assert "fake" in nbinfra_session.names("llm")[0]


def test_sync_facade_against_the_wire_server(
    nbinfra_session: Any, wire_factory: Callable[..., LLMWireServer]
) -> None:
    server = wire_factory("openai")
    server.push(Reply(chunks=["x", "y"], usage=(2, 2)))
    llm = nbinfra.llm(
        "openai", api_key="sk-sync-facade-123456", base_url=server.base_url(), max_retries=0
    )
    assert list(llm.stream("hi")) == ["x", "y"]
    assert "sk-sync-facade-123456" not in repr(nbinfra_session)
    llm.close()


def test_import_llm_imports_no_sdk() -> None:
    code = (
        "import sys, nbinfra, nbinfra.llm\n"
        "from nbinfra.llm import LLMFactory, LLMProvider\n"
        "llm = LLMFactory.get_llm('openai', api_key='sk-import-test-1')\n"
        "nbinfra.llm.provider_statuses()\n"
        "heavy = {'openai', 'groq', 'anthropic', 'httpx', 'httpx2', 'google', 'ollama',\n"
        "         'huggingface_hub', 'tiktoken', 'pandas', 'numpy', 'ipywidgets'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_shipped_configuration_validates_for_every_provider(nbinfra_session: Any) -> None:
    from nbinfra.config import load_settings

    conf = load_settings(environ={})
    llm = LLMSettings.load(conf)
    assert set(llm.providers) >= {p.value for p in LLMProvider}
    assert llm.provider("openai").models["gpt-4o-mini"].context_window == 128000
    for kind in ("openai", "azure", "groq", "fake"):
        provider = LLMFactory.get_llm(kind, settings=conf, session=nbinfra_session)
        assert provider.timeout > 0 and provider.retry.max_retries >= 0


def test_misspelt_provider_setting_is_refused(nbinfra_session: Any) -> None:
    from nbinfra.errors import ConfigError

    conf = settings(providers={"openai": {"timout": 5}})
    with pytest.raises(ConfigError, match=r"llm\.providers\.openai\.timout .*'timeout'"):
        LLMFactory.get_llm("openai", settings=conf, session=nbinfra_session)
    ok = settings(providers={"azure": {"endpoint": "https://x.example", "api_version": "v1"}})
    assert LLMFactory.get_llm("azure", settings=ok, session=nbinfra_session).provider == "azure"


def test_llm_package_names_resolve_lazily() -> None:
    names = nbinfra.llm.__all__
    assert names == sorted(names)
    for name in names:
        assert getattr(nbinfra.llm, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        nbinfra.llm.nope  # noqa: B018
