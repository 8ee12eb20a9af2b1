"""The body gate refuses what would crash a parser, before any parser runs."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldbill import jsonbody


def test_valid_body_parses_money_as_decimal():
    assert jsonbody.parse(b'{"amount": 72.50, "n": 3, "s": "a]}"}') == {
        "amount": Decimal("72.50"),
        "n": 3,
        "s": "a]}",
    }


def test_invalid_utf8_is_a_400():
    with pytest.raises(jsonbody.BodyRejected) as caught:
        jsonbody.parse(b'{"name": "\xff\xfe"}')
    assert (caught.value.status, caught.value.code) == (400, "malformed_body")


def test_lone_surrogate_in_text_is_a_400():
    with pytest.raises(jsonbody.BodyRejected) as caught:
        jsonbody.parse('{"name": "\ud800"}')
    assert caught.value.status == 400


def test_deep_nesting_is_refused_without_recursing():
    with pytest.raises(jsonbody.BodyRejected) as caught:
        jsonbody.parse("[" * 50_000 + "]" * 50_000)
    assert (caught.value.status, caught.value.code) == (400, "malformed_json")


def test_brackets_inside_strings_do_not_count():
    text = '{"a": "' + "[" * 100 + '"}'
    assert jsonbody.parse(text) == {"a": "[" * 100}


def test_oversized_body_is_a_413():
    with pytest.raises(jsonbody.BodyRejected) as caught:
        jsonbody.parse(b" " * 11, max_bytes=10)
    assert caught.value.status == 413


def test_not_json_is_a_400():
    with pytest.raises(jsonbody.BodyRejected) as caught:
        jsonbody.parse(b"{nope")
    assert caught.value.code == "malformed_json"


@given(
    st.recursive(st.none() | st.booleans() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c))
)
def test_depth_matches_the_structure(value):
    import json

    def depth(v):
        if isinstance(v, list):
            return 1 + max((depth(x) for x in v), default=0)
        if isinstance(v, dict):
            return 1 + max((depth(x) for x in v.values()), default=0)
        return 0

    assert jsonbody.nesting_depth(json.dumps(value)) == depth(value)
