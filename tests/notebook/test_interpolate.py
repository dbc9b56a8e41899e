"""Prompt interpolation and SQL bind names."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbinfra.errors import NbinfraError
from nbinfra.notebook.interpolate import (
    InterpolationError,
    interpolate,
    sql_bind_names,
    sql_params,
)


class Obj:
    name = "Ada"


NS = {"x": 3, "topic": "caches", "obj": Obj(), "d": {"key": "v", 1: "one"}, "f": 1 / 3}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("about {topic}", "about caches"),
        ("{obj.name} and {d[key]} and {d[1]} and {d['key']}", "Ada and v and one and v"),
        ("{f:.2f} {topic!r}", "0.33 'caches'"),
        ("{{topic}}", "{topic}"),
        ("literal }} and {{", "literal } and {"),
        ('return {"a": 1, "b": [1, 2]}', 'return {"a": 1, "b": [1, 2]}'),
        ('{"nested": {x}}', '{"nested": 3}'),
        ("{undefined} stays", "{undefined} stays"),
        ("{ unbalanced", "{ unbalanced"),
        ("close } alone", "close } alone"),
        ("f'{name}'", "f'{name}'"),
        ("{}", "{}"),
        ("{0}", "{0}"),
    ],
)
def test_interpolate(text: str, expected: str) -> None:
    assert interpolate(text, NS) == expected


def test_bad_path_on_defined_name_is_one_line_error() -> None:
    with pytest.raises(InterpolationError, match=r"Cannot interpolate \{obj.missing\}"):
        interpolate("{obj.missing}", NS)
    with pytest.raises(InterpolationError, match="literal braces"):
        interpolate("{d[nope]}", NS)


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("{}[]:.!'\"xdobj_name 0123rs")), max_size=40))
def test_interpolate_never_crashes(text: str) -> None:
    try:
        out = interpolate(text, NS)
    except NbinfraError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(out, str)


def test_sql_bind_names_skip_strings_comments_and_casts() -> None:
    sql = (
        "SELECT ':nope', \"col:x\", a::int, $$ :dollar $$ -- :comment\n"
        "FROM t /* :block */ WHERE id = :id AND name = :name OR id = :id"
    )
    assert sql_bind_names(sql) == ["id", "name"]


def test_sql_params_come_from_namespace_and_undefined_fails() -> None:
    assert sql_params("select :x", NS) == {"x": 3}
    with pytest.raises(InterpolationError, match=r"binds :y .* never as SQL text"):
        sql_params("select :y", NS)
