"""docs/api.md "Problem types" and `ProblemType` list the same problems, with the same status and title."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.errors import PROBLEM_TYPE_BASE, Problem, ProblemType

API_DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"
# A row of the table: | `slug` | status | title | notes |
_ROW = re.compile(r"^\| `(?P<slug>[a-z-]+)` \| (?P<status>\d{3}) \| (?P<title>[^|]+?) \|")


def documented_problem_types() -> dict[str, tuple[int, str]]:
    text = API_DOC.read_text(encoding="utf-8")
    section = text.split("## Problem types\n", 1)[1].split("\n## ", 1)[0]
    rows = [_ROW.match(line) for line in section.splitlines()]
    return {row["slug"]: (int(row["status"]), row["title"]) for row in rows if row}


def test_docs_list_every_problem_type_with_its_status_and_title() -> None:
    in_code = {str(type_): (type_.status, type_.title) for type_ in ProblemType}
    assert documented_problem_types() == in_code


def test_a_problem_carries_its_types_status_title_and_uri() -> None:
    problem = Problem(ProblemType.sealed, "sealed on acme")
    assert (problem.status, problem.title) == (409, "The flag is sealed on an org above")
    assert problem.document()["type"] == PROBLEM_TYPE_BASE + "sealed"


def test_a_row_errors_slug_names_its_type_and_an_unknown_slug_is_refused() -> None:
    assert Problem("too-deep", "row 3").type is ProblemType.too_deep  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Problem("no-such-problem", "x")  # type: ignore[arg-type]
