"""Configuration: substitution on parsed scalars, search order, validation, secrets."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from nbinfra._secrets import MASK, Secret, mask_url, redact
from nbinfra.config import (
    FILES,
    PACKAGE_RESOURCES,
    Settings,
    Unset,
    load_settings,
    resource_dirs,
    substitute,
)
from nbinfra.errors import ConfigError, MissingSettingError, NbinfraError
from nbinfra.logs import get_logger


@dataclass
class RedisSettings:
    host: str = "localhost"
    port: int = 6379
    db: int = 0
    password: Secret = field(default_factory=lambda: Secret(""))
    ssl: bool = False
    timeout: float = 1.0
    url: str | None = None
    mode: Literal["single", "sentinel", "cluster"] = "single"
    hosts: list[str] = field(default_factory=list)


@dataclass
class WithExtra:
    __extra_field__ = "options"
    kind: str
    options: dict[str, Any] = field(default_factory=dict)


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


# -- substitution ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "env", "expected"),
    [
        ("${HOST}", {"HOST": "db"}, "db"),
        ("${HOST:localhost}", {}, "localhost"),
        ("${HOST:localhost}", {"HOST": "db"}, "db"),
        ("${URL:redis://user@h:6379/0}", {}, "redis://user@h:6379/0"),  # default with ':'
        ("${OPT:}", {}, ""),
        ("$${HOME}", {"HOME": "x"}, "${HOME}"),  # escape
        ("a-${X:1}-b-${Y:2}", {"Y": "3"}, "a-1-b-3"),
        ("no vars", {}, "no vars"),
        ("${EMPTY:default}", {"EMPTY": ""}, ""),  # set but empty is still set
    ],
    ids=[
        "set",
        "default",
        "env-wins",
        "default-url",
        "optional",
        "escape",
        "several",
        "plain",
        "empty-set",
    ],
)
def test_substitute(raw: str, env: dict[str, str], expected: str) -> None:
    assert substitute(raw, environ=env) == expected


def test_unset_without_default_is_a_marker_naming_var_file_and_key() -> None:
    value = substitute(
        "${REDIS_PASSWORD}", file="application-cache.yaml", path="cache.redis.pw", environ={}
    )
    assert value == Unset("REDIS_PASSWORD", "application-cache.yaml", "cache.redis.pw")
    assert isinstance(value, Unset)
    message = str(value.error())
    assert "REDIS_PASSWORD" in message
    assert "application-cache.yaml" in message and "cache.redis.pw" in message


def test_values_cannot_inject_yaml(tmp_path: Path) -> None:
    # Substitution happens after parsing: a value with YAML syntax stays one string.
    write(tmp_path, "application-db.yaml", 'db:\n  host: "${EVIL}"\n  port: 5432\n')
    s = load_settings(tmp_path, environ={"EVIL": "x\n  port: 1\nother: {a: 1}"})
    assert s.get("db.host") == "x\n  port: 1\nother: {a: 1}"
    assert s.get("db.port") == 5432
    assert not s.has("other")


# -- loading and search order ----------------------------------------------------------
def test_package_defaults_cover_every_file_and_load_offline() -> None:
    for name in FILES:
        assert (PACKAGE_RESOURCES / name).is_file(), name
    s = load_settings(environ={})
    assert [p.name for p in s.files] == list(FILES)


def test_search_order_explicit_then_cwd_upward_then_package(tmp_path: Path) -> None:
    project = tmp_path / "project"
    nested = project / "notebooks" / "deep"
    nested.mkdir(parents=True)
    write(project / "resources", "application-cache.yaml", "cache:\n  default_ttl: 11\n")
    explicit = tmp_path / "explicit"
    write(explicit, "application-llm.yaml", "llm:\n  default: fake\n")

    dirs = resource_dirs(cwd=nested, environ={})
    assert dirs == [(project / "resources").resolve(), PACKAGE_RESOURCES.resolve()]

    s = load_settings(explicit, cwd=nested, environ={})
    assert s.get("llm.default") == "fake"  # explicit folder
    assert s.get("cache.default_ttl") == 11  # ./resources found upward
    assert s.origin("cache.default_ttl").endswith("project/resources/application-cache.yaml")
    assert s.has("connections")  # the package default for the files nobody overrides

    via_env = load_settings(cwd=tmp_path, environ={"NBINFRA_RESOURCES": str(explicit)})
    assert via_env.get("llm.default") == "fake"


def test_missing_explicit_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"does not exist; point it at a folder"):
        load_settings(tmp_path / "nope", environ={})
    with pytest.raises(ConfigError, match=r"\$NBINFRA_RESOURCES="):
        load_settings(environ={"NBINFRA_RESOURCES": str(tmp_path / "nope")})


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "application-cache.yaml", "cache:\n  ttl: [1, 2\n")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, environ={})
    assert str(path) in str(err.value) and "line" in str(err.value)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    write(tmp_path, "application-cache.yaml", "- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_settings(tmp_path, environ={})


def test_files_merge_and_a_duplicate_key_names_both_files(tmp_path: Path) -> None:
    write(tmp_path, "application-db.yaml", "connections:\n  pg: {kind: postgres}\n")
    write(tmp_path, "application-vector.yaml", "connections:\n  qd: {kind: qdrant}\n")
    write(tmp_path, "application-external.yaml", "connections:\n  s3: {kind: s3}\n")
    s = load_settings(tmp_path, environ={})
    assert sorted(s.get("connections")) == ["pg", "qd", "s3"]
    assert s.origin("connections.qd.kind").endswith("application-vector.yaml")

    write(tmp_path, "application-external.yaml", "connections:\n  pg: {kind: s3}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, environ={})
    assert "application-db.yaml" in str(err.value)
    assert "application-external.yaml" in str(err.value)


def test_yaml_is_safe_loaded(tmp_path: Path) -> None:
    write(tmp_path, "application-cache.yaml", "cache: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_settings(tmp_path, environ={})


# -- validation -----------------------------------------------------------------------
def seed_redis(tmp_path: Path, env: dict[str, str]) -> Settings:
    # The seed's exact snippet.
    write(
        tmp_path,
        "application-db.yaml",
        'redis:\n  host: "${REDIS_HOST:localhost}"\n  port: "${REDIS_PORT:6379}"\n'
        '  password: "${REDIS_PASSWORD}"\n',
    )
    return load_settings(tmp_path, environ=env)


def test_seed_snippet_types_are_coerced_after_substitution(tmp_path: Path) -> None:
    s = seed_redis(tmp_path, {"REDIS_PORT": "6380", "REDIS_PASSWORD": "pw-from-env-123"})
    cfg = s.section("redis", RedisSettings)
    assert cfg.host == "localhost" and cfg.port == 6380 and isinstance(cfg.port, int)
    assert isinstance(cfg.password, Secret) and cfg.password.reveal() == "pw-from-env-123"
    assert "pw-from-env-123" not in repr(cfg)


def test_unset_variable_only_fails_the_component_that_uses_it(tmp_path: Path) -> None:
    s = seed_redis(tmp_path, {})  # REDIS_PASSWORD unset: loading still works
    assert s.get("redis.host") == "localhost"
    with pytest.raises(MissingSettingError) as err:
        s.section("redis", RedisSettings)
    message = str(err.value)
    assert "REDIS_PASSWORD" in message
    assert "redis.password" in message
    assert "application-db.yaml" in message
    assert err.value.var == "REDIS_PASSWORD"


@pytest.mark.parametrize(
    ("yaml_text", "needle"),
    [
        (
            "redis:\n  port: abc\n",
            "redis.port in .*application-db.yaml: expected an integer, got 'abc'",
        ),
        ("redis:\n  ssl: maybe\n", "redis.ssl .*expected true or false"),
        ("redis:\n  timeout: fast\n", "redis.timeout .*expected a number"),
        ("redis:\n  mode: clustr\n", "redis.mode .*must be one of .*did you mean 'cluster'"),
        ("redis:\n  prot: 1\n", "redis.prot .*unknown setting .*did you mean 'port'"),
        ("redis:\n  hosts: 5\n", r"redis.hosts .*expected a list"),
        ("redis: 7\n", "redis in .*expected a mapping"),
    ],
    ids=["int", "bool", "float", "literal", "unknown-key", "list", "mapping"],
)
def test_validation_errors_name_file_and_key_path(
    tmp_path: Path, yaml_text: str, needle: str
) -> None:
    write(tmp_path, "application-db.yaml", yaml_text)
    s = load_settings(tmp_path, environ={})
    with pytest.raises(ConfigError, match=needle):
        s.section("redis", RedisSettings)


def test_bools_lists_optionals_and_extra_fields(tmp_path: Path) -> None:
    write(
        tmp_path,
        "application-db.yaml",
        'redis:\n  ssl: "${SSL:yes}"\n  hosts: "${HOSTS:a:1, b:2}"\n  url: "${URL:}"\n'
        "thing:\n  kind: x\n  region: eu\n  retries: 3\n",
    )
    s = load_settings(tmp_path, environ={})
    cfg = s.section("redis", RedisSettings)
    assert cfg.ssl is True
    assert cfg.hosts == ["a:1", "b:2"]
    assert cfg.url is None  # ${URL:} is optional: empty -> None for an Optional field
    extra = s.section("thing", WithExtra)
    assert extra.kind == "x" and extra.options == {"region": "eu", "retries": 3}


def test_missing_required_field_is_named(tmp_path: Path) -> None:
    write(tmp_path, "application-db.yaml", "thing:\n  region: eu\n")
    s = load_settings(tmp_path, environ={})
    with pytest.raises(ConfigError, match=r"thing in .*missing required setting.*kind"):
        s.section("thing", WithExtra)


# -- secrets --------------------------------------------------------------------------
SENTINEL = "s3cr3t-SENTINEL-7f9a"


def test_secrets_are_masked_in_reprs_errors_logs_and_dumps(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(
        tmp_path,
        "application-db.yaml",
        'redis:\n  password: "${PW}"\n  port: nope\n'
        'pg:\n  url: "postgresql://app:${PGPW}@db.example:5432/app"\n',
    )
    s = load_settings(tmp_path, environ={"PW": SENTINEL, "PGPW": SENTINEL + "-pg"})
    dumped = repr(s) + str(s.as_dict())
    assert SENTINEL not in dumped
    assert s.as_dict()["redis"]["password"] == MASK
    assert s.as_dict()["pg"]["url"] == f"postgresql://app:{MASK}@db.example:5432/app"

    # An error whose message quotes the secret (a driver echoing its DSN) is redacted.
    err = NbinfraError(f"cannot connect to postgresql://app:{SENTINEL}-pg@db.example")
    assert SENTINEL not in str(err) and SENTINEL not in repr(err)
    assert SENTINEL not in "".join(err._render_traceback_())

    log = get_logger("nbinfra.test.config")
    with caplog.at_level(logging.INFO, logger="nbinfra"):
        log.info("connecting with password %s", SENTINEL)
    assert caplog.records and SENTINEL not in caplog.text
    assert MASK in caplog.text


def test_secret_wrapper_and_url_masking() -> None:
    secret = Secret("abcd-1234-secret")
    assert str(secret) == MASK and "abcd" not in repr(secret) and f"{secret}" == MASK
    assert secret.reveal() == "abcd-1234-secret" and secret == Secret("abcd-1234-secret")
    assert redact("token=abcd-1234-secret;") == f"token={MASK};"
    assert mask_url("redis://:pw-xyz-1@h:6379/0") == f"redis://:{MASK}@h:6379/0"
    assert mask_url("https://h/x?api_key=k-123&q=1") == f"https://h/x?api_key={MASK}&q=1"
    assert mask_url("redis://h:6379/0") == "redis://h:6379/0"


def test_settings_from_dict_substitutes_like_files() -> None:
    s = Settings.from_dict({"a": {"b": "${NBX_UNSET_VAR:7}"}}, environ={})
    assert s.get("a.b") == "7"
    assert os.environ.get("NBX_UNSET_VAR") is None
    with pytest.raises(ConfigError, match=r"No setting a\.c"):
        s.get("a.c")
