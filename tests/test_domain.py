"""Unit tests for app/domain: pure rules, no database.

Catalog parsing and validation, path value parsing, identifiers, the bulk-row parsers
and the org creation planner (dedupe, conflicts, cycles, missing parents, scope).
"""

from __future__ import annotations

import math

import orjson
import pytest

from app.domain.access import Principal, Role, principal_from_claims
from app.domain.catalog import MAX_VALUE_BYTES, Catalog
from app.domain.hierarchy import MAX_ROW_ERRORS, OrgRow, invalid_rows, plan_creation, referenced_ids
from app.domain.ids import check_flag_name, check_org_id, is_flag_name, is_org_id
from app.domain.org_rows import parse_rows
from app.domain.resolution import Link, resolve
from app.errors import Problem


def catalog_of(**flags) -> Catalog:
    return Catalog.parse(orjson.dumps({"flags": flags}))


def refused(raw: bytes | str) -> Problem:
    with pytest.raises(Problem) as caught:
        Catalog.parse(raw)
    assert caught.value.slug == "invalid-catalog"
    assert caught.value.status == 422
    return caught.value


# --------------------------------------------------------------------------- catalog


class TestCatalogParsing:
    def test_a_valid_catalog_parses_every_type(self):
        catalog = catalog_of(
            **{
                "new-checkout": {"type": "boolean", "default": False, "description": "New checkout", "set": "checkout"},
                "max-upload-mb": {"type": "number", "default": 10, "min": 1, "max": 1024},
                "retention-days": {"type": "integer", "default": 30, "min": 1},
                "theme": {"type": "string", "default": "light", "allowed": ["light", "dark"]},
                "limits": {"type": "object", "default": {"seats": 5}},
            }
        )
        assert len(catalog) == 5
        assert {flag.name for flag in catalog} == {"new-checkout", "max-upload-mb", "retention-days", "theme", "limits"}
        assert "theme" in catalog and "nope" not in catalog
        assert catalog.require("new-checkout").set == "checkout"
        assert catalog.require("theme").set == "default"  # a flag without a set is in "default"
        # number defaults are floats, integers stay integers
        assert catalog.require("max-upload-mb").default == 10.0
        assert type(catalog.require("max-upload-mb").default) is float
        assert type(catalog.require("retention-days").default) is int
        assert catalog.require("limits").default == {"seats": 5}

    def test_schema_key_is_allowed(self):
        catalog = Catalog.parse(
            orjson.dumps({"$schema": "./flags.schema.json", "flags": {"a": {"type": "boolean", "default": True}}})
        )
        assert len(catalog) == 1

    def test_public_leaves_out_unset_limits(self):
        catalog = catalog_of(beta={"type": "boolean", "default": False})
        public = catalog.require("beta").public()
        assert public == {"name": "beta", "type": "boolean", "default": False, "description": "", "set": "default"}

    def test_require_unknown_flag_is_flag_not_found(self):
        catalog = catalog_of(beta={"type": "boolean", "default": False})
        assert catalog.get("nope") is None
        with pytest.raises(Problem) as caught:
            catalog.require("nope")
        assert caught.value.slug == "flag-not-found"
        assert caught.value.status == 404

    def test_in_sets_and_changed_from(self):
        old = catalog_of(
            a={"type": "boolean", "default": False, "set": "ui"},
            b={"type": "integer", "default": 1, "set": "storage"},
            c={"type": "string", "default": "x"},
        )
        assert {f.name for f in old.in_sets(None)} == {"a", "b", "c"}
        assert {f.name for f in old.in_sets(frozenset({"ui", "default"}))} == {"a", "c"}
        assert old.in_sets(frozenset({"nothing"})) == []
        new = catalog_of(
            a={"type": "boolean", "default": False, "set": "ui"},
            b={"type": "integer", "default": 2, "set": "storage"},
            d={"type": "boolean", "default": True},
        )
        assert {f.name for f in new.changed_from(old)} == {"b", "d"}

    def test_not_json(self):
        assert "not JSON" in refused(b"{flags: ").detail

    @pytest.mark.parametrize(
        "document",
        [
            {},  # no flags
            {"flags": []},  # flags must be an object
            {"flags": {}, "extra": 1},  # unknown top-level key
            [],
        ],
    )
    def test_wrong_document_shape(self, document):
        refused(orjson.dumps(document))

    @pytest.mark.parametrize(
        ("name", "definition", "words"),
        [
            ("a", {"type": "float", "default": 1.0}, "type"),
            ("a", {"default": True}, "type"),
            ("a", {"type": "boolean"}, "default"),
            ("a", {"type": "boolean", "default": "true"}, "true or false"),
            ("a", {"type": "integer", "default": 1.5}, "integer"),
            ("a", {"type": "integer", "default": True}, "integer"),
            ("a", {"type": "number", "default": "10"}, "number"),
            ("a", {"type": "number", "default": 0, "min": 1, "max": 5}, "minimum"),
            ("a", {"type": "integer", "default": 10, "min": 1, "max": 5}, "maximum"),
            ("a", {"type": "integer", "default": 3, "min": 5, "max": 1}, "min is greater than max"),
            ("a", {"type": "boolean", "default": True, "min": 0}, "min/max"),
            ("a", {"type": "integer", "default": 1, "allowed": ["1"]}, "allowed"),
            ("a", {"type": "string", "default": "blue", "allowed": ["light", "dark"]}, "one of"),
            ("a", {"type": "string", "default": 5}, "string"),
            ("a", {"type": "object", "default": [1, 2]}, "object"),
            ("a", {"type": "boolean", "default": True, "colour": "red"}, "colour"),
            ("a", {"type": "boolean", "default": True, "set": "Not A Set"}, "set"),
            ("a", "boolean", "dictionary"),
            ("Upper", {"type": "boolean", "default": True}, "flag name"),
            ("-lead", {"type": "boolean", "default": True}, "flag name"),
            ("x" * 129, {"type": "boolean", "default": True}, "flag name"),
        ],
    )
    def test_invalid_definitions_refuse_the_whole_catalog(self, name, definition, words):
        good = {"fine": {"type": "boolean", "default": False}}
        problem = refused(orjson.dumps({"flags": {**good, name: definition}}))
        assert words.lower() in problem.detail.lower(), problem.detail
        if len(name) < 50:
            assert name in problem.detail  # the reason names the faulty flag

    def test_longest_flag_name_is_accepted(self):
        assert len(catalog_of(**{"x" * 128: {"type": "boolean", "default": True}})) == 1


class TestValueChecks:
    catalog = catalog_of(
        b={"type": "boolean", "default": False},
        i={"type": "integer", "default": 5, "min": 1, "max": 10},
        n={"type": "number", "default": 2.5, "min": 0.5, "max": 100},
        s={"type": "string", "default": "light", "allowed": ["light", "dark"]},
        free={"type": "string", "default": ""},
        o={"type": "object", "default": {}},
    )

    @pytest.mark.parametrize(
        ("flag", "value", "stored"),
        [
            ("b", True, True),
            ("i", 1, 1),
            ("i", 10, 10),
            ("n", 3, 3.0),
            ("n", 0.5, 0.5),
            ("s", "dark", "dark"),
            ("free", "anything at all", "anything at all"),
            ("o", {"a": [1]}, {"a": [1]}),
        ],
    )
    def test_check_accepts(self, flag, value, stored):
        checked = self.catalog.require(flag).check(value)
        assert checked == stored
        assert type(checked) is type(stored)

    @pytest.mark.parametrize(
        ("flag", "value"),
        [
            ("b", 1),
            ("b", "true"),
            ("b", None),
            ("i", True),
            ("i", 2.0),
            ("i", 0),
            ("i", 11),
            ("i", "5"),
            ("n", math.nan),
            ("n", math.inf),
            ("n", False),
            ("n", 0.4),
            ("n", 100.01),
            ("s", "blue"),
            ("s", 1),
            ("free", "x" * (MAX_VALUE_BYTES + 1)),
            ("o", [1]),
            ("o", "{}"),
            ("o", {"big": "x" * MAX_VALUE_BYTES}),
        ],
    )
    def test_check_refuses_with_invalid_value(self, flag, value):
        with pytest.raises(Problem) as caught:
            self.catalog.require(flag).check(value)
        assert caught.value.slug == "invalid-value"
        assert caught.value.status == 422

    def test_graph_round_trip_of_objects_and_numbers(self):
        obj, num = self.catalog.require("o"), self.catalog.require("n")
        stored = obj.to_graph({"b": 1, "a": {"c": True}})
        assert isinstance(stored, str)
        assert obj.from_graph(stored) == {"a": {"c": True}, "b": 1}
        assert num.from_graph(3) == 3.0 and type(num.from_graph(3)) is float


class TestPathValues:
    catalog = TestValueChecks.catalog

    @pytest.mark.parametrize(
        ("flag", "text", "value"),
        [
            ("b", "true", True),
            ("b", "TRUE", True),
            ("b", "False", False),
            ("b", "fAlSe", False),
            ("i", "7", 7),
            ("i", "10", 10),
            ("n", "2.5e1", 25.0),
            ("n", "10", 10.0),
            ("n", "0.5", 0.5),
            ("n", "1E2", 100.0),
            ("s", "dark", "dark"),
            ("free", "Hello world/again", "Hello world/again"),
            ("free", "", ""),
            ("free", "true", "true"),
            ("o", '{"seats": 9}', {"seats": 9}),
            ("o", "{}", {}),
        ],
    )
    def test_parses_by_type(self, flag, text, value):
        parsed = self.catalog.require(flag).parse_path_value(text)
        assert parsed == value
        assert type(parsed) is type(value)

    @pytest.mark.parametrize(
        ("flag", "text"),
        [
            ("b", "yes"),
            ("b", "1"),
            ("b", ""),
            ("i", "1.5"),
            ("i", "0"),
            ("i", "11"),
            ("i", "five"),
            ("i", "1e1"),
            ("n", "NaN"),
            ("n", "Infinity"),
            ("n", "1e999"),
            ("n", ".5"),
            ("n", "0x10"),
            ("n", "abc"),
            ("n", "1000"),
            ("s", "blue"),
            ("s", "Dark"),
            ("o", "[1,2]"),
            ("o", "not-json"),
            ("o", '"text"'),
            ("o", "null"),
        ],
    )
    def test_refuses_what_does_not_fit(self, flag, text):
        with pytest.raises(Problem) as caught:
            self.catalog.require(flag).parse_path_value(text)
        assert caught.value.slug == "invalid-value"


# --------------------------------------------------------------------------- identifiers


class TestIdentifiers:
    @pytest.mark.parametrize("org", ["a", "acme-eu", "A.b_c:d-e", "...", ".a", "a..", "0", "x" * 128, "::"])
    def test_valid_org_ids(self, org):
        assert is_org_id(org)
        assert check_org_id(org) == org

    @pytest.mark.parametrize("org", [".", "..", "", "x" * 129, "a b", "a/b", "é", "a\n", "a%2F", None, 5, ["a"]])
    def test_invalid_org_ids(self, org):
        assert not is_org_id(org)
        with pytest.raises(Problem) as caught:
            check_org_id(org)
        assert caught.value.slug == "invalid-id"

    @pytest.mark.parametrize("flag", ["a", "0", "new-checkout", "a.b_c-d", "x" * 128])
    def test_valid_flag_names(self, flag):
        assert is_flag_name(flag)
        assert check_flag_name(flag) == flag

    @pytest.mark.parametrize("flag", ["", "A", "New", "-a", ".a", "_a", "a b", "a:b", "x" * 129, None, 3])
    def test_invalid_flag_names(self, flag):
        assert not is_flag_name(flag)
        with pytest.raises(Problem) as caught:
            check_flag_name(flag)
        assert caught.value.slug == "invalid-id"


# --------------------------------------------------------------------------- access and resolution


class TestAccess:
    def test_highest_known_role_wins_and_unknown_roles_are_ignored(self):
        principal = principal_from_claims({"sub": "a", "roles": ["reader", "superuser", "writer"], "orgs": ["x"]})
        assert principal.role is Role.writer
        assert principal.subject == "a"
        assert principal.orgs == frozenset({"x"})
        assert not principal.unscoped

    def test_no_known_role_is_forbidden_everywhere(self):
        principal = principal_from_claims({"sub": "a", "roles": ["superuser"], "orgs": ["*"]})
        assert principal.role is None
        with pytest.raises(Problem) as caught:
            principal.require(Role.reader)
        assert caught.value.slug == "forbidden"

    def test_role_order(self):
        writer = Principal("w", Role.writer, frozenset({"*"}))
        writer.require(Role.reader)
        writer.require(Role.writer)
        with pytest.raises(Problem):
            writer.require(Role.admin)

    def test_scope_is_the_same_answer_for_missing_and_foreign_orgs(self):
        scoped = Principal("s", Role.admin, frozenset({"a"}))
        scoped.require_scope(["a-child", "a"])
        answers = []
        for chain in (None, ["b-child", "b"]):
            with pytest.raises(Problem) as caught:
                scoped.require_scope(chain)
            answers.append(caught.value.document())
        assert answers[0] == answers[1]
        assert answers[0]["status"] == 403
        Principal("u", Role.reader, frozenset({"*"})).require_scope(None)  # unscoped: existence decides later


class TestResolution:
    flag = catalog_of(n={"type": "number", "default": 1}).require("n")

    def test_nearest_setting_wins(self):
        chain = [Link("leaf", None), Link("mid", 7), Link("root", 3)]
        resolved = resolve(self.flag, chain)
        assert (resolved.value, resolved.reason, resolved.source_org, resolved.depth) == (7.0, "inherited", "mid", 1)

    def test_own_and_default(self):
        own = resolve(self.flag, [Link("leaf", 2), Link("root", 3)])
        assert (own.reason, own.source_org, own.depth) == ("own", "leaf", 0)
        default = resolve(self.flag, [Link("leaf", None), Link("root", None)])
        assert (default.value, default.reason, default.source_org, default.depth) == (1.0, "default", None, None)


# --------------------------------------------------------------------------- bulk row parsing


def slugs(errors):
    return [(error.row, error.id, error.type) for error in errors]


class TestParseRows:
    def test_json_array_rows_count_from_one(self):
        raw = orjson.dumps(
            [{"id": "a", "parent": None}, {"id": "b", "parent": "a"}, {"id": "bad id"}, {"id": "c"}, "not an object"]
        )
        rows, errors = parse_rows(raw, "application/json")
        assert [(r.row, r.id, r.parent) for r in rows] == [(1, "a", None), (2, "b", "a"), (4, "c", None)]
        assert slugs(errors) == [(3, "bad id", "invalid-id"), (5, None, "invalid-body")]

    def test_json_empty_content_type_is_json(self):
        rows, errors = parse_rows(b'[{"id": "a"}]', "")
        assert [r.id for r in rows] == ["a"] and errors == []

    def test_ndjson_rows_are_line_numbers(self):
        raw = b'{"id": "a", "parent": "b"}\n\n{"id": "b"}\n{"id": ".."}\n{broken\n'
        rows, errors = parse_rows(raw, "application/x-ndjson")
        assert [(r.row, r.id, r.parent) for r in rows] == [(1, "a", "b"), (3, "b", None)]
        assert slugs(errors) == [(4, "..", "invalid-id"), (5, None, "invalid-body")]

    def test_csv_rows_count_from_the_first_line_after_the_header(self):
        raw = b"id,parent\r\nleaf,mid\r\nmid,root\r\nroot,\r\nbad id,root\r\nonly-one-field\r\na,b,c\r\n"
        rows, errors = parse_rows(raw, "text/csv")
        assert [(r.row, r.id, r.parent) for r in rows] == [(1, "leaf", "mid"), (2, "mid", "root"), (3, "root", None)]
        assert slugs(errors) == [(4, "bad id", "invalid-id"), (5, None, "invalid-body"), (6, None, "invalid-body")]
        assert "2 fields" in errors[1].detail

    def test_csv_header_may_be_reordered_and_padded(self):
        rows, errors = parse_rows("\ufeff Parent , ID \nroot,leaf\n,root\n".encode(), "text/csv")
        assert errors == []
        assert [(r.row, r.id, r.parent) for r in rows] == [(1, "leaf", "root"), (2, "root", None)]

    @pytest.mark.parametrize("raw", [b"id\na\n", b"id,parent,extra\na,b,c\n", b"", b"org,parent\na,\n", b"\xff\xfe,\n"])
    def test_csv_without_the_two_columns_is_an_unreadable_body(self, raw):
        with pytest.raises(Problem) as caught:
            parse_rows(raw, "text/csv")
        assert caught.value.slug == "invalid-body"
        assert caught.value.status == 400

    @pytest.mark.parametrize("raw", [b"[{", b'{"id": "a"}', b"", b"null"])
    def test_json_that_is_not_an_array_is_an_unreadable_body(self, raw):
        with pytest.raises(Problem) as caught:
            parse_rows(raw, "application/json")
        assert caught.value.slug == "invalid-body"

    def test_unknown_media_type(self):
        with pytest.raises(Problem) as caught:
            parse_rows(b"id: a", "application/yaml")
        assert caught.value.status == 415

    def test_row_faults(self):
        raw = orjson.dumps(
            [
                {"id": "a", "parent": "b", "extra": 1},
                {"id": 5},
                {"id": "a", "parent": "x y"},
                {"parent": "a"},
                {"id": "x" * 129},
                {"id": "."},
            ]
        )
        rows, errors = parse_rows(raw, "application/json")
        assert rows == []
        assert slugs(errors) == [
            (1, "a", "invalid-body"),
            (2, None, "invalid-id"),
            (3, "a", "invalid-id"),
            (4, None, "invalid-id"),
            (5, "x" * 129, "invalid-id"),
            (6, ".", "invalid-id"),
        ]


# --------------------------------------------------------------------------- creation planning

UNSCOPED = Principal("root", Role.admin, frozenset({"*"}))


def plan(rows, existing=None, chains=None, principal=UNSCOPED, asked=None):
    """Plan `[(id, parent), ...]` (rows numbered from 1); `asked` collects chain look-ups."""
    existing = existing or {}
    chains = chains or {}
    asked = [] if asked is None else asked

    def chain_of(org):
        asked.append(org)
        return chains.get(org)

    return plan_creation(
        [OrgRow(n, org, parent) for n, (org, parent) in enumerate(rows, start=1)], existing, chain_of, principal
    )


def errs(result):
    return [(error.row, error.id, error.type) for error in result.errors]


class TestPlanCreation:
    def test_children_before_parents(self):
        result = plan([("c", "b"), ("b", "a"), ("a", None)])
        assert result.errors == []
        assert sorted(result.create) == [("a", None), ("b", "a"), ("c", "b")]
        assert result.unchanged == 0

    def test_repeated_identical_rows_are_counted_once(self):
        result = plan([("a", None), ("b", "a"), ("a", None), ("b", "a")])
        assert result.errors == []
        assert sorted(result.create) == [("a", None), ("b", "a")]
        assert result.unchanged == 2

    def test_existing_orgs_with_the_same_parent_are_unchanged(self):
        result = plan([("a", None), ("b", "a"), ("c", "b")], existing={"a": None, "b": "a"})
        assert result.errors == [] and result.create == [("c", "b")] and result.unchanged == 2

    def test_duplicate_id_with_two_parents_is_a_conflict_on_the_later_row(self):
        result = plan([("p", None), ("q", None), ("x", "p"), ("x", "q")])
        assert errs(result) == [(4, "x", "org-conflict")]
        assert "row 3" in result.errors[0].detail

    def test_existing_org_under_another_parent_is_a_conflict(self):
        result = plan([("x", "q")], existing={"x": "p", "q": None})
        assert errs(result) == [(1, "x", "org-conflict")]
        # an existing root asked for again as a child conflicts too, and the other way round
        assert errs(plan([("r", "q")], existing={"r": None, "q": None})) == [(1, "r", "org-conflict")]
        assert errs(plan([("x", None)], existing={"x": "p"})) == [(1, "x", "org-conflict")]

    def test_parent_nowhere_is_parent_not_found(self):
        result = plan([("a", None), ("b", "ghost"), ("c", "a")])
        assert errs(result) == [(2, "b", "parent-not-found")]
        assert "ghost" in result.errors[0].detail

    def test_cycles_inside_the_request(self):
        result = plan([("a", "b"), ("b", "c"), ("c", "a"), ("ok", None), ("self", "self")])
        assert errs(result) == [(1, "a", "cycle"), (2, "b", "cycle"), (3, "c", "cycle"), (5, "self", "cycle")]

    def test_errors_are_sorted_by_row(self):
        result = plan([("z", "y"), ("y", "z"), ("x", "ghost"), ("w", None), ("w", "x")], existing={})
        assert [error.row for error in result.errors] == sorted(error.row for error in result.errors)
        assert {e[2] for e in errs(result)} == {"cycle", "parent-not-found", "org-conflict"}

    def test_unscoped_callers_look_up_chains_only_for_depth_once_per_existing_parent(self):
        asked: list[str] = []
        result = plan([("b", "a"), ("c", "a"), ("d", "c")], existing={"a": None}, chains={"a": ["a"]}, asked=asked)
        assert asked == ["a"] and result.create == [("b", "a"), ("c", "a"), ("d", "c")]

    def test_depth_counts_from_the_graph_through_the_request(self):
        rows = [OrgRow(1, "z", "y"), OrgRow(2, "y", "x"), OrgRow(3, "x", "top"), OrgRow(4, "w", "x")]
        result = plan_creation(rows, {"top": "r"}, {"top": ["top", "r"]}.get, UNSCOPED, max_depth=3)
        assert errs(result) == [(1, "z", "too-deep")]  # top 1, x 2, y and w 3, z 4
        assert sorted(result.create) == [("w", "x"), ("x", "top"), ("y", "x")]

    def test_referenced_ids_lists_orgs_and_parents_once(self):
        rows = [OrgRow(1, "b", "a"), OrgRow(2, "c", "b"), OrgRow(3, "a", None)]
        assert referenced_ids(rows) == ["b", "a", "c"]


class TestPlanCreationScope:
    scoped = Principal("tenant", Role.admin, frozenset({"t"}))
    existing = {"t": "top", "t-1": "t", "top": None, "other": "top"}
    chains = {"t": ["t", "top"], "t-1": ["t-1", "t", "top"], "other": ["other", "top"], "top": ["top"]}

    def scoped_plan(self, rows):
        return plan(rows, self.existing, self.chains, self.scoped)

    def forbidden(self, rows):
        with pytest.raises(Problem) as caught:
            self.scoped_plan(rows)
        assert caught.value.slug == "forbidden"
        return caught.value

    def test_inside_the_subtree_including_through_new_parents(self):
        result = self.scoped_plan([("deep", "new"), ("new", "t-1"), ("n2", "t")])
        assert result.errors == []
        assert sorted(result.create) == [("deep", "new"), ("n2", "t"), ("new", "t-1")]

    def test_a_scoped_caller_cannot_create_roots(self):
        assert "row 1" in self.forbidden([("r", None)]).detail

    def test_parent_outside_the_subtree(self):
        problem = self.forbidden([("ok", "t"), ("x", "other")])
        assert "row 2" in problem.detail

    def test_the_subtree_root_s_own_parent_is_outside(self):
        self.forbidden([("x", "top")])

    def test_unknown_parent_and_loops_are_forbidden_not_reported(self):
        # A scoped caller must not learn whether an id exists elsewhere.
        unknown = self.forbidden([("x", "ghost")])
        other = self.forbidden([("x", "other")])
        assert unknown.status == other.status == 403
        self.forbidden([("a", "b"), ("b", "a")])

    def test_existing_id_elsewhere_is_a_plain_conflict(self):
        result = self.scoped_plan([("other", "t")])
        assert errs(result) == [(1, "other", "org-conflict")]
        assert "top" not in result.errors[0].detail  # nothing about where it lives


def test_invalid_rows_lists_at_most_100_errors():
    from app.domain.hierarchy import RowError

    errors = [RowError(n, f"id{n}", "invalid-id", "bad") for n in range(1, 151)]
    problem = invalid_rows(errors)
    assert problem.slug == "invalid-rows" and problem.status == 422
    document = problem.document()
    assert len(document["errors"]) == MAX_ROW_ERRORS == 100
    assert document["errors"][0] == {"row": 1, "id": "id1", "type": "invalid-id", "detail": "bad"}
    assert "150" in document["detail"]
