"""Loaders without a database: the synthetic shape, the import-file format, bad-row reports."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import orjson
import pytest

from app.domain.catalog import Catalog
from loaders.admin_csv import import_arguments, read_manifest
from loaders.synthetic import Shape, generate, level_sizes, tenant_sizes, write_admin, write_csv
from loaders.user_csv import BadRows, check_and_write

REPO = Path(__file__).resolve().parent.parent
CATALOG = Catalog.load(REPO / "flags.json")


def _csv_text(shape: Shape) -> tuple[str, str]:
    orgs, values = io.StringIO(), io.StringIO()
    write_csv(shape, orgs, values, CATALOG)
    return orgs.getvalue(), values.getvalue()


def test_same_seed_same_bytes_other_seed_other_forest():
    shape = Shape(orgs=3000, max_depth=20, density=0.05, seed=7)
    assert _csv_text(shape) == _csv_text(shape)
    assert _csv_text(Shape(orgs=3000, max_depth=20, density=0.05, seed=8)) != _csv_text(shape)


def test_shape_huge_tenants_long_tail_and_depth():
    shape = Shape(orgs=20_000, fanout=(6, 4), max_depth=20, huge=2, huge_share=0.5, density=0.02, seed=3)
    sizes = list(tenant_sizes(shape))
    assert sum(sizes) == 20_000
    assert sizes[:2] == [5000, 5000]
    tail = sizes[2:]
    assert max(tail) < 5000 and len(tail) > 500
    assert sorted(tail)[len(tail) // 2] <= 3  # most tenants are tiny

    parent_of: dict[str, str | None] = {}
    depth_of: dict[str, int] = {}
    valued = 0
    for org in generate(shape, CATALOG):
        assert org.id not in parent_of
        assert org.parent is None or org.parent in parent_of  # parents first
        parent_of[org.id] = org.parent
        depth_of[org.id] = 0 if org.parent is None else depth_of[org.parent] + 1
        assert depth_of[org.id] == org.depth <= 20
        for flag, value in org.values:
            assert flag.problem_with(value) is None
            valued += 1
    assert len(parent_of) == 20_000
    assert max(depth_of.values()) == 20  # the huge tenants' deep division
    children: dict[str, int] = {}
    for parent in parent_of.values():
        if parent is not None:
            children[parent] = children.get(parent, 0) + 1
    root_fanout = children["t0-0"]
    assert root_fanout == 6
    assert 0.02 * 20_000 < valued < 0.2 * 20_000


def test_level_sizes_respect_fanout_and_max_depth():
    assert level_sizes(1 + 10 + 80 + 5, (10, 8), 12) == [1, 10, 80, 5]
    assert level_sizes(1000, (2,), 3) == [1, 2, 4, 993]  # the last level takes the rest
    assert sum(level_sizes(123_457, (10, 8, 6, 4), 20)) == 123_457


def test_admin_files_headers_and_arguments(tmp_path):
    manifest = write_admin(Shape(orgs=500, density=0.3, seed=2), tmp_path / "import", CATALOG)
    folder = tmp_path / "import"
    header = lambda name: (folder / f"{name}.header.csv").read_text().strip()  # noqa: E731
    assert header("orgs") == "id:ID(Org)"
    assert header("parent_of") == ":START_ID(Org),:END_ID(Org)"
    assert header("flags_boolean") == "name:ID(Flag),type,default:boolean,set,description,definition,active:boolean"
    assert header("set_long") == ":START_ID(Org),:END_ID(Flag),value:long,updated_at:datetime,updated_by"
    assert header("set_double").split(",")[2] == "value:double"
    assert header("set_string").split(",")[2] == "value:string"
    counts = manifest.counts()
    assert counts["Org"] == 500 and counts["Flag"] == len(CATALOG)
    assert counts["PARENT_OF"] == sum(1 for _ in open(folder / "parent_of.csv"))
    assert read_manifest(folder)["counts"] == counts
    arguments = import_arguments(folder, read_manifest(folder))
    assert f"--nodes=Org={folder.resolve()}/orgs.header.csv,{folder.resolve()}/orgs.csv" in arguments
    assert any(a.startswith("--relationships=SET=") and a.endswith("set_string.csv") for a in arguments)
    # Strings are quoted (an empty default stays an empty string, not a missing property);
    # objects are JSON text, numbers doubles.
    flags = {row[0]: row for row in csv.reader(open(folder / "flags_string.csv"))}
    assert flags["support-banner"][2] == ""
    assert '"support-banner","","' not in (folder / "flags_string.csv").read_text()
    assert ',"",' in (folder / "flags_string.csv").read_text()
    assert orjson.loads(flags["session-policy"][2]) == {"idle_minutes": 30, "mfa": False}
    for row in csv.reader(open(folder / "set_double.csv")):
        float(row[2])
        assert "." in row[2] or "e" in row[2]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_user_csv_bad_rows_are_reported_with_lines_and_nothing_is_written(tmp_path):
    orgs = _write(
        tmp_path / "orgs.csv",
        "\n".join(
            [
                "id,parent",  # line 1
                "acme,",  # 2
                "acme-eu,acme",  # 3
                "acme eu,acme",  # 4 bad id
                "acme-eu,acme",  # 5 duplicate
                "ghost-kid,ghost",  # 6 unknown parent
                "a,b",  # 7 cycle a -> b -> a
                "b,a",  # 8
                "self,self",  # 9 its own parent
                "x,y,z",  # 10 three fields
                "",
            ]
        ),
    )
    values = _write(
        tmp_path / "values.csv",
        "\n".join(
            [
                "org,flag,value",
                'acme,theme,"""dark"""',  # 2 fine
                'acme,theme,"""blue"""',  # 3 not allowed (and a duplicate)
                "acme-eu,no-such-flag,true",  # 4
                'nobody,theme,"""dark"""',  # 5
                "acme-eu,max-upload-mb,5000",  # 6 above max
                "acme-eu,new-checkout,yes",  # 7 not JSON
                "acme-eu,new-checkout,true",  # 8 fine
                "acme-eu,new-checkout,false",  # 9 duplicate
                "",
            ]
        ),
    )
    with pytest.raises(BadRows) as refused:
        check_and_write(orgs, values, CATALOG, tmp_path / "import")
    found = {(row.file, row.line, row.type) for row in refused.value.rows}
    assert found == {
        ("orgs.csv", 4, "invalid-id"),
        ("orgs.csv", 5, "duplicate-id"),
        ("orgs.csv", 6, "parent-not-found"),
        ("orgs.csv", 7, "cycle"),
        ("orgs.csv", 8, "cycle"),
        ("orgs.csv", 9, "cycle"),
        ("orgs.csv", 10, "invalid-row"),
        ("values.csv", 3, "invalid-value"),
        ("values.csv", 4, "flag-not-found"),
        ("values.csv", 5, "org-not-found"),
        ("values.csv", 6, "invalid-value"),
        ("values.csv", 7, "invalid-value"),
        ("values.csv", 9, "duplicate-value"),
    }
    assert refused.value.total == len(found)
    assert "orgs.csv:6: parent-not-found" in str(refused.value)
    assert list((tmp_path / "import").iterdir()) == []


def test_user_csv_header_is_checked(tmp_path):
    orgs = _write(tmp_path / "orgs.csv", "org,parent_id\na,\n")
    with pytest.raises(BadRows) as refused:
        check_and_write(orgs, None, CATALOG, tmp_path / "import")
    assert refused.value.rows[0].type == "invalid-header"


def test_user_csv_any_order_and_values_stored_as_the_graph_holds_them(tmp_path):
    rows = [("root", None)] + [(f"n{i}", "root" if i < 5 else f"n{i % 5}") for i in range(50)]
    random.Random(4).shuffle(rows)  # children before parents is fine
    orgs = _write(tmp_path / "orgs.csv", "id,parent\n" + "".join(f"{o},{p or ''}\n" for o, p in rows))
    values = _write(
        tmp_path / "values.csv",
        "org,flag,value\n"
        'n7,session-policy,"{""mfa"": true, ""idle_minutes"": 5}"\nroot,max-upload-mb,20\n'
        "n3,checkout-timeout-s,600\n",
    )
    manifest = check_and_write(orgs, values, CATALOG, tmp_path / "import")
    assert manifest.counts()["Org"] == 51 and manifest.counts()["PARENT_OF"] == 50
    folder = tmp_path / "import"
    strings = list(csv.reader(open(folder / "set_string.csv")))
    assert strings[0][:3] == ["n7", "session-policy", '{"idle_minutes":5,"mfa":true}']
    assert list(csv.reader(open(folder / "set_double.csv")))[0][:3] == ["root", "max-upload-mb", "20.0"]
    assert list(csv.reader(open(folder / "set_long.csv")))[0][:3] == ["n3", "checkout-timeout-s", "600"]
