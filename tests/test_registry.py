"""The generic registry: lazy entries, decorator, entry points, errors, no drift."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import textwrap
from enum import Enum
from pathlib import Path

import pytest

from nbinfra.errors import (
    MissingDependencyError,
    RegistrationError,
    UnknownKindError,
)
from nbinfra.registry import BUILTINS, Entry, Registry, import_target, target_of


class Base:
    pass


class Kind(str, Enum):
    ALPHA = "alpha"


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path for throwaway plugin modules."""
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("nbtest_")]:
        del sys.modules[name]


def write_module(folder: Path, name: str, source: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    importlib.invalidate_caches()


def test_decorator_registers_and_enum_kinds_normalise() -> None:
    reg: Registry[Base] = Registry("widget", group="nbtest.none", base=Base, builtins={})

    @reg.register(Kind.ALPHA)
    class Alpha(Base):
        pass

    assert reg.get("alpha") is Alpha
    assert reg.get(Kind.ALPHA) is Alpha
    assert reg.get("  ALPHA ") is Alpha
    assert reg.get_class("alpha") is Alpha  # the seed's name
    assert "alpha" in reg and Kind.ALPHA in reg and "beta" not in reg
    assert reg.kinds() == ["alpha"]


def test_lazy_entry_imports_on_first_lookup(plugin_dir: Path) -> None:
    write_module(
        plugin_dir,
        "nbtest_lazy",
        """
        from tests.test_registry import Base
        class Lazy(Base):
            pass
        """,
    )
    reg: Registry[Base] = Registry(
        "widget", group="nbtest.none", base=Base, builtins={"lazy": Entry("nbtest_lazy:Lazy")}
    )
    assert "nbtest_lazy" not in sys.modules
    assert reg.kinds() == ["lazy"]  # listing does not import
    assert "nbtest_lazy" not in sys.modules
    cls = reg.get("lazy")
    assert cls.__name__ == "Lazy" and "nbtest_lazy" in sys.modules


def test_self_registering_module_matching_its_lazy_entry_is_a_no_op(plugin_dir: Path) -> None:
    reg: Registry[Base] = Registry(
        "widget", group="nbtest.none", base=Base, builtins={"self": Entry("nbtest_self:Self")}
    )
    sys.modules["nbtest_registry_under_test"] = type(sys)("nbtest_registry_under_test")
    sys.modules["nbtest_registry_under_test"].reg = reg  # type: ignore[attr-defined]
    write_module(
        plugin_dir,
        "nbtest_self",
        """
        from tests.test_registry import Base
        from nbtest_registry_under_test import reg
        @reg.register("self")
        class Self(Base):
            pass
        """,
    )
    assert reg.get("self").__name__ == "Self"
    assert reg.entry("self") == Entry("nbtest_self:Self")


def test_reregistering_same_class_is_idempotent_and_different_needs_replace() -> None:
    reg: Registry[Base] = Registry("widget", group="nbtest.none", base=Base, builtins={})

    class One(Base):
        pass

    class Two(Base):
        pass

    reg.register("x", One)
    reg.register("x", One)  # no-op
    with pytest.raises(RegistrationError, match=r"already registered to .*One.*replace=True"):
        reg.register("x", Two)
    assert reg.get("x") is One
    reg.register("x", Two, replace=True)
    assert reg.get("x") is Two


def test_registering_a_non_subclass_is_refused() -> None:
    reg: Registry[Base] = Registry("widget", group="nbtest.none", base=Base, builtins={})

    class Other:
        pass

    with pytest.raises(RegistrationError, match="must subclass"):
        reg.register("other", Other)  # type: ignore[arg-type]


def test_unknown_kind_lists_available_and_suggests_nearest() -> None:
    reg: Registry[Base] = Registry(
        "cache",
        group="nbtest.none",
        builtins={"memory": Entry("x:Y"), "redis": Entry("x:Z")},
        aliases={"in_memory": "memory"},
    )
    with pytest.raises(UnknownKindError) as err:
        reg.get("rediss")
    message = str(err.value)
    assert message == "Unknown cache kind 'rediss'. Available: memory, redis. Did you mean 'redis'?"
    with pytest.raises(UnknownKindError, match="Did you mean 'memory'"):
        reg.get("in_memry")
    with pytest.raises(UnknownKindError, match="non-empty"):
        reg.get("")


def test_missing_driver_raises_install_hint(plugin_dir: Path) -> None:
    write_module(
        plugin_dir,
        "nbtest_needs_driver",
        """
        import nbtest_driver_that_is_not_installed
        class Needs:
            pass
        """,
    )
    reg: Registry[Base] = Registry(
        "connection",
        group="nbtest.none",
        builtins={"needs": Entry("nbtest_needs_driver:Needs", "needs")},
    )
    with pytest.raises(MissingDependencyError) as err:
        reg.get("needs")
    assert "nbtest_driver_that_is_not_installed" in str(err.value)
    assert "pip install 'nbinfra[needs]'" in str(err.value)
    assert err.value.hint == "pip install 'nbinfra[needs]'"
    assert isinstance(err.value, ImportError)  # callers catching ImportError still work
    assert not reg.is_available("needs")


def test_a_missing_nbinfra_module_is_a_bug_not_a_missing_driver() -> None:
    reg: Registry[Base] = Registry(
        "widget", group="nbtest.none", builtins={"gone": Entry("nbinfra.no_such_module:X", "x")}
    )
    with pytest.raises(ModuleNotFoundError):
        reg.get("gone")


def test_entry_points_are_read_lazily_as_strings(
    plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = plugin_dir / "nbtest_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: nbtest-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[nbtest.group]\nshiny = nbtest_ep:Shiny\n")
    write_module(
        plugin_dir,
        "nbtest_ep",
        """
        from tests.test_registry import Base
        class Shiny(Base):
            pass
        """,
    )
    reg: Registry[Base] = Registry("widget", group="nbtest.group", base=Base, builtins={})
    assert "nbtest_ep" not in sys.modules
    assert reg.kinds() == ["shiny"]
    assert "nbtest_ep" not in sys.modules  # reading entry points imports nothing
    assert reg.get("shiny").__name__ == "Shiny"


def test_lazy_string_registration_and_unregister() -> None:
    reg: Registry[Base] = Registry("widget", group="nbtest.none", builtins={})
    reg.register("path", "pathlib:Path")
    assert reg.get("path") is Path
    with pytest.raises(RegistrationError):
        reg.register("path", "pathlib:PurePath")
    reg.unregister("path")
    assert "path" not in reg


def test_import_target_and_target_of_round_trip() -> None:
    assert import_target(target_of(Registry)) is Registry
    assert target_of(Registry) == "nbinfra.registry:Registry"


def test_builtin_tables_are_sorted_and_match_the_classes_that_register() -> None:
    """No drift: every lazy entry names a class that registers itself under that kind."""
    for group, table in BUILTINS.items():
        assert list(table) == sorted(table), f"{group} table is not sorted"
        for kind, entry in table.items():
            cls = import_target(entry.target)
            assert isinstance(cls, type), entry.target
            assert target_of(cls) == entry.target, f"{group}:{kind} points at an alias"
            assert entry.extra is None or entry.extra.replace("-", "").isalnum()
    registries = _component_registries()
    for group, registry in registries.items():
        for kind in BUILTINS[group]:
            cls = registry.get(kind)
            assert registry.entry(kind) is not None
            assert target_of(cls) == BUILTINS[group][kind].target
        # every class registered by a built-in module is declared in the table
        for kind in registry._classes:
            module = registry._classes[kind].__module__
            if module.startswith("nbinfra."):
                assert kind in BUILTINS[group], f"{group}: '{kind}' registers but is undeclared"


def _component_registries() -> dict[str, Registry[object]]:
    """The registries of the components that exist in this tree."""
    found: dict[str, Registry[object]] = {}
    for module_name, attr, group in (
        ("nbinfra.cache", "CacheRegistry", "nbinfra.caches"),
        ("nbinfra.connections", "ConnectionRegistry", "nbinfra.connections"),
        ("nbinfra.llm", "LLMRegistry", "nbinfra.llms"),
    ):
        spec = importlib.util.find_spec(module_name)
        module = importlib.import_module(module_name) if spec is not None else None
        registry = getattr(module, attr, None)
        if registry is None:
            assert not BUILTINS[group], f"{group} has entries but {module_name}.{attr} is missing"
            continue
        found[group] = registry
    return found


def test_the_seeds_kind_enums_name_only_registered_builtins() -> None:
    """``ConnectionType`` and ``CacheType`` are the seed's public names, not a second list:
    every member is a row of the registry's table, so they cannot drift from it."""
    from nbinfra.cache import CacheType
    from nbinfra.connections import ConnectionType

    for enum, group in ((ConnectionType, "nbinfra.connections"), (CacheType, "nbinfra.caches")):
        values = {member.value for member in enum}
        assert values <= set(BUILTINS[group]), (enum.__name__, values - set(BUILTINS[group]))
