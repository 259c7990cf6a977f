"""The bulk org reader (app/domain/org_rows.py): the same rows however the body is cut into
chunks, and work linear in the body however small the chunks are."""

from __future__ import annotations

import csv
import io

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.domain.org_rows import RowParser
from app.domain.value_rows import ValueRowParser
from app.errors import Problem

MEDIA = {"json": "application/json", "ndjson": "application/x-ndjson", "csv": "text/csv"}

_good_id = st.text(alphabet="abcXYZ09._:-", min_size=1, max_size=10)
_any_id = st.one_of(_good_id, st.text(max_size=6))  # quotes, commas, brackets, newlines, unicode...
_pairs = st.lists(st.tuples(_any_id, st.one_of(st.none(), _any_id)), max_size=6)


def body_of(pairs: list[tuple[str, str | None]], form: str, pretty: bool) -> bytes:
    if form == "json":
        return orjson.dumps(
            [{"id": org, "parent": parent} for org, parent in pairs], option=orjson.OPT_INDENT_2 if pretty else 0
        )
    if form == "ndjson":
        end = "\r\n" if pretty else "\n"
        return end.join(orjson.dumps({"id": org, "parent": parent}).decode() for org, parent in pairs).encode()
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n" if pretty else "\n")
    writer.writerow(["id", "parent"])
    writer.writerows([(org, parent or "") for org, parent in pairs])
    return text.getvalue().encode()


def read(media: str, chunks: list[bytes]):
    """(rows, errors), or the problem the parser raised: both must not depend on the chunks."""
    try:
        parser = RowParser(media)
        for chunk in chunks:
            parser.feed(chunk)
        return parser.close()
    except Exception as error:  # a Problem: the same one whatever the cut
        return repr(error)


@settings(max_examples=150, deadline=None)
@given(
    pairs=_pairs,
    form=st.sampled_from(sorted(MEDIA)),
    pretty=st.booleans(),
    noise=st.sampled_from([b"", b" ", b"x", b",", b"]", b'"', b"\\", b"\n", b"\xff"]),
)
def test_every_cut_gives_the_same_rows(pairs, form, pretty, noise):
    body = body_of(pairs, form, pretty) + noise
    media = MEDIA[form]
    whole = read(media, [body])
    for cut in range(len(body) + 1):
        assert read(media, [body[:cut], body[cut:]]) == whole, (body, cut)
    assert read(media, [body[i : i + 1] for i in range(len(body))]) == whole
    for size in (2, 3, 7):
        assert read(media, [body[i : i + size] for i in range(0, len(body), size)]) == whole


@settings(max_examples=50, deadline=None)
@given(body=st.binary(max_size=80), form=st.sampled_from(sorted(MEDIA)))
# Found by this test: an empty header line, then a byte that is not UTF-8. Whole, the bad byte
# was reported; cut after the first line, the header.
@example(body=b"\n\x80\n", form="csv")
def test_every_cut_of_arbitrary_bytes_gives_the_same_answer(body, form):
    whole = read(MEDIA[form], [body])
    for cut in range(len(body) + 1):
        assert read(MEDIA[form], [body[:cut], body[cut:]]) == whole, (body, cut)


def long_line(form: str, size: int) -> bytes:
    org = "x" * size
    if form == "json":
        return orjson.dumps([{"id": "a"}, {"id": org, "parent": "a"}, {"id": "b"}])
    if form == "ndjson":
        return b'{"id": "a"}\n' + orjson.dumps({"id": org, "parent": "a"}) + b'\n{"id": "b"}\n'
    return f"id,parent\na,\n{org},a\nb,\n".encode()


@pytest.mark.parametrize("form", sorted(MEDIA))
def test_a_long_line_in_small_chunks_is_scanned_a_bounded_number_of_times(form):
    """Counted, not timed: the bytes the reader examines stay a small multiple of the body,
    even for a 1 MB line arriving 64 bytes at a time (16,384 chunks)."""
    body = long_line(form, 1024 * 1024)
    parser = RowParser(MEDIA[form])
    for start in range(0, len(body), 64):
        parser.feed(body[start : start + 64])
    rows, errors = parser.close()
    assert [row.id for row in rows] == ["a", "b"]
    assert [error.row for error in errors] == [2]  # an invalid id (CSV: a field past csv's size limit)
    assert parser.scanned <= 4 * len(body), parser.scanned / len(body)


# --- bulk values (app/domain/value_rows.py) read by the same streaming reader ----------------------

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.text(max_size=5),
    st.dictionaries(st.text(max_size=3), st.integers(0, 3), max_size=2),
)
_value_pairs = st.lists(st.tuples(_any_id, _values), max_size=6)


def value_body_of(pairs: list[tuple[str, object]], form: str, pretty: bool) -> bytes:
    if form == "json":
        return orjson.dumps(
            [{"org": org, "value": value} for org, value in pairs], option=orjson.OPT_INDENT_2 if pretty else 0
        )
    if form == "ndjson":
        end = "\r\n" if pretty else "\n"
        return end.join(orjson.dumps({"org": org, "value": value}).decode() for org, value in pairs).encode()
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n" if pretty else "\n")
    writer.writerow(["value", "org"] if pretty else ["org", "value"])
    writer.writerows(
        [(orjson.dumps(value).decode(), org) if pretty else (org, orjson.dumps(value).decode()) for org, value in pairs]
    )
    return text.getvalue().encode()


def read_values(media: str, chunks: list[bytes]):
    try:
        parser = ValueRowParser(media)
        for chunk in chunks:
            parser.feed(chunk)
        return parser.close()
    except Exception as error:
        return repr(error)


@settings(max_examples=100, deadline=None)
@given(
    pairs=_value_pairs,
    form=st.sampled_from(sorted(MEDIA)),
    pretty=st.booleans(),
    noise=st.sampled_from([b"", b" ", b"x", b",", b"]", b'"', b"\\", b"\n", b"\xff"]),
)
def test_value_rows_are_the_same_however_the_body_is_cut(pairs, form, pretty, noise):
    body = value_body_of(pairs, form, pretty) + noise
    whole = read_values(MEDIA[form], [body])
    for cut in range(len(body) + 1):
        assert read_values(MEDIA[form], [body[:cut], body[cut:]]) == whole, (body, cut)
    assert read_values(MEDIA[form], [body[i : i + 1] for i in range(len(body))]) == whole


@pytest.mark.parametrize("form", sorted(MEDIA))
def test_value_rows_keep_their_numbers_values_and_errors_in_every_format(form):
    pairs = [("a", True), ("bad id", 1), ("b", None), ("c", {"seats": 3}), ("d", "on")]
    rows, errors = read_values(MEDIA[form], [value_body_of(pairs, form, pretty=False)])
    assert [(row.row, row.org, row.value) for row in rows] == [
        (1, "a", True),
        (3, "b", None),
        (4, "c", {"seats": 3}),
        (5, "d", "on"),
    ]
    assert [(error.row, error.type) for error in errors] == [(2, "invalid-id")]


@pytest.mark.parametrize("form", sorted(MEDIA))
def test_a_long_value_row_in_small_chunks_is_scanned_a_bounded_number_of_times(form):
    """The value reader shares the org reader's linear work: a 1 MB value in 64-byte chunks."""
    big = "x" * (1024 * 1024)
    body = value_body_of([("a", True), ("b", big), ("c", False)], form, pretty=False)
    parser = ValueRowParser(MEDIA[form])
    for start in range(0, len(body), 64):
        parser.feed(body[start : start + 64])
    rows, errors = parser.close()
    if form == "csv":  # a field past csv's size limit: that row's error, the others read
        assert [row.org for row in rows] == ["a", "c"] and [error.row for error in errors] == [2]
    else:
        assert [row.org for row in rows] == ["a", "b", "c"] and rows[1].value == big
    assert parser.scanned <= 4 * len(body), parser.scanned / len(body)


def test_a_json_array_of_values_is_read_as_it_arrives():
    """Rows come out of each chunk, not at close(): the array is never held whole."""
    parser = ValueRowParser("application/json")
    parser.feed(b'[{"org": "a", "value": true}, {"org": "b", "val')
    assert [row.org for row in parser.rows] == ["a"]
    parser.feed(b'ue": false}]')
    rows, errors = parser.close()
    assert [(row.org, row.value) for row in rows] == [("a", True), ("b", False)] and errors == []


@pytest.mark.parametrize(
    "body, says",
    [
        (b'{"org": "a"}', '{"org", "value"}'),
        (b"", "the body is empty"),
        (b'[{"org": "a", "value": true}', "does not end"),
    ],
)
def test_a_body_that_is_not_an_array_of_value_rows_is_refused_whole(body, says):
    with pytest.raises(Problem) as refused:
        parser = ValueRowParser("application/json")
        parser.feed(body)
        parser.close()
    assert refused.value.slug == "invalid-body" and says in refused.value.detail
