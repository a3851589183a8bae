"""Generated input shared by the tests that throw arbitrary data at a boundary (Hypothesis)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

# Field names of the request bodies, so generated objects often hit a real field.
BODY_FIELDS = ("image", "imageUrl", "keywords", "all", "label", "channels", "urls", "rotate_secret")


def json_values(keys: st.SearchStrategy[str] | None = None, leaves: int = 20) -> Any:
    """Return a strategy of any JSON document: nested lists and objects of odd scalars."""
    names = keys if keys is not None else st.text(max_size=8)
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(names, children, max_size=4)
        ),
        max_leaves=leaves,
    )


def request_bodies(leaves: int = 20) -> Any:
    """Return a strategy of HTTP request bodies: junk, any JSON, deep, surrogate, huge."""
    fields = st.sampled_from(BODY_FIELDS) | st.text(max_size=6)
    return st.one_of(
        st.binary(max_size=100),
        json_values(fields, leaves).map(lambda v: json.dumps(v).encode()),
        st.integers(300, 3000).map(lambda n: b'{"keywords":' + b"[" * n + b"]" * n + b"}"),
        st.sampled_from(
            [
                b'{"keywords": ["\\ud800"]}',
                b'{"image": "\\udfff"}',
                b'{"keywords": ["a"], "n": ' + b"1" * 5000 + b"}",
                b'{"channels": "my-topic"}',
            ]
        ),
    )
