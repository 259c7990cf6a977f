"""The route table is the one source: /openapi.json's paths, the region gate's writes, the id rules.

Unit tests, no database: they read the table (app/http/routes.py) and what is made from it.
"""

from __future__ import annotations

import re

import pytest
from starlette.routing import Match, Mount

from app.domain import ids
from app.http.api_route import ApiRoute, SeedAlias
from app.http.openapi import paths_of, spec
from app.http.routes import ROUTES

API_ROUTES = [route for route in ROUTES if isinstance(route, ApiRoute)]


def test_every_route_but_the_console_files_is_an_api_route() -> None:
    others = [route for route in ROUTES if not isinstance(route, ApiRoute)]
    assert [(type(route), route.path) for route in others] == [(Mount, "/ui")]


def test_openapi_documents_exactly_the_routes_that_have_an_operation() -> None:
    documented = {(path, method) for path, operations in spec()["paths"].items() for method in operations}
    in_table = {
        (re.sub(r":[^}]+}", "}", route.path), route.method.lower())
        for route in API_ROUTES
        if route.operation is not None
    }
    assert documented == in_table
    # The one route left out: the console's documentation assets behind /docs.
    assert [route.path for route in API_ROUTES if route.operation is None] == ["/docs/{name}"]


def test_a_path_converter_is_not_part_of_the_documented_template() -> None:
    seed_post = ApiRoute("/{org}/{flag}/{val:path}", lambda request: None, "POST", operation={"summary": "x"})
    assert paths_of([seed_post]) == {"/{org}/{flag}/{val}": {"post": {"summary": "x"}}}


def test_id_schemas_are_the_rules_of_domain_ids() -> None:
    parameters = spec()["paths"]["/v1/orgs/{org}/flags/{flag}"]["get"]["parameters"]
    schema = {parameter["name"]: parameter["schema"] for parameter in parameters}
    assert schema["org"]["pattern"] == f"^{ids.ORG_ID_PATTERN}$"
    assert schema["org"]["not"] == {"enum": list(ids.NOT_ORG_IDS)}
    assert schema["flag"]["pattern"] == f"^{ids.FLAG_NAME_PATTERN}$"
    for value in ("acme", "a.b:c-d_e", ".", "..", "no space", "x" * 129):
        documented = re.fullmatch(schema["org"]["pattern"][1:-1], value) is not None and value not in (".", "..")
        assert documented == ids.is_org_id(value), value


@pytest.mark.parametrize(
    "path", ["/v1/orgs/{org}/flags/{flag}", "/{org}/{flag}/{val}", "/v1/orgs/{org}", "/v1/flags/{flag}/values"]
)
def test_a_dry_run_answer_is_one_of_the_operations_answer_or_a_dry_run(path: str) -> None:
    write = next(operation for method, operation in spec()["paths"][path].items() if method != "get")
    assert {
        "name": "dry_run",
        "in": "query",
        "required": False,
        "schema": {"type": "boolean", "default": False},
        "description": write["parameters"][-1]["description"],
    } == write["parameters"][-1]
    schema = write["responses"]["200"]["content"]["application/json"]["schema"]
    # Each choice is a plain reference or schema: a nested oneOf would match a dry run twice and refuse it.
    choices = schema.get("oneOf", [schema])
    assert {"$ref": "#/components/schemas/DryRun"} in choices
    assert all("oneOf" not in choice for choice in choices)


def test_writes_are_what_the_table_declares() -> None:
    writes = {(route.path, route.method) for route in API_ROUTES if route.writes}
    assert writes == {
        ("/v1/orgs/{org}/flags/{flag}", "PUT"),
        ("/v1/orgs/{org}/flags/{flag}", "DELETE"),
        ("/v1/orgs", "POST"),
        ("/v1/orgs/bulk", "POST"),
        ("/v1/orgs/{org}", "PATCH"),
        ("/v1/flags/{flag}/values", "PUT"),
        ("/v1/schedules/{schedule}", "DELETE"),
        ("/{org}/{flag}/{val:path}", "POST"),
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/orgs/acme/children"), ("POST", "/ofrep/v1/event-streams/acme"), ("GET", "/v1/audit")],
)
def test_the_seed_aliases_leave_the_api_namespaces_alone(method, path):
    """A wrong method on an API path is the API's 405, not a seed toggle of an org called `v1`."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    seeds = [route for route in ROUTES if isinstance(route, SeedAlias)]
    assert len(seeds) == 2
    assert all(route.matches(scope)[0] is Match.NONE for route in seeds)
    # Outside those namespaces they are the seed's paths, as written.
    assert seeds[0].matches({**scope, "method": "GET", "path": "/acme/beta"})[0] is Match.FULL
    assert seeds[1].matches({**scope, "method": "POST", "path": "/acme/beta/true"})[0] is Match.FULL
