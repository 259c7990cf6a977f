"""The one value codec (app/domain/value_codec.py) the store, a region's copy and the loaders share."""

from __future__ import annotations

from app.domain import value_codec
from app.domain.catalog import FlagDefinition


def test_objects_are_stored_as_canonical_json_text():
    assert value_codec.to_graph({"b": 1, "a": {"d": 2, "c": 3}}, "object") == '{"a":{"c":3,"d":2},"b":1}'
    assert value_codec.canonical_json({"b": 1, "a": 2}) == value_codec.canonical_json({"a": 2, "b": 1})


def test_without_a_type_the_shape_decides_and_agrees_with_the_catalog():
    """A region applying an upstream event knows no flag types: it must store what the catalog would."""
    flags = {
        "object": ({"mfa": True, "a": [1, 2]}, FlagDefinition(name="o", type="object", default={})),
        "boolean": (True, FlagDefinition(name="b", type="boolean", default=False)),
        "integer": (7, FlagDefinition(name="i", type="integer", default=0)),
        "number": (2.5, FlagDefinition(name="n", type="number", default=0)),
        "string": ("dark", FlagDefinition(name="s", type="string", default="")),
    }
    for value, flag in flags.values():
        assert value_codec.to_graph(value) == flag.to_graph(value)


def test_stored_values_come_back_as_the_api_shows_them():
    assert value_codec.from_graph('{"a":1}', "object") == {"a": 1}
    assert value_codec.from_graph(3, "number") == 3.0 and type(value_codec.from_graph(3, "number")) is float
    assert value_codec.from_graph(3, "integer") == 3 and type(value_codec.from_graph(3, "integer")) is int
    assert value_codec.from_graph(True, "boolean") is True
    assert value_codec.from_graph('{"a":1}', "string") == '{"a":1}'


def test_audit_text_is_none_for_no_value():
    assert value_codec.optional_json(None) is None
    assert value_codec.optional_json(False) == "false"


def test_the_stored_definition_is_what_a_catalog_sync_compares():
    flag = FlagDefinition(name="theme", type="string", default="light", allowed=("light", "dark"))
    assert flag.stored_definition() == value_codec.canonical_json(flag.public())
