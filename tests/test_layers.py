"""The layers, checked on the source (issue 12, "One house"): who may import whom, no import
circles, Cypher only in the store, and every module importable.

    domain         pure rules: imports nothing of app but the domain and the Problem type
    store          every Cypher call: the domain, settings, observability (query metrics)
    cache, region  the value cache and a region's copy: the store and the domain, never services or HTTP
    services       use cases: the store, the domain, the cache, a region's status
    http           routes over services: never the store (see HTTP_STORE_EXCEPTIONS), never `db`
    loaders        offline tools: services, the store and the domain, never HTTP or the cache
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "loaders")

SHARED = {"errors", "settings", "periodic", "observability", "domain"}
ALLOWED: dict[str, set[str]] = {
    "domain": {"domain", "errors"},
    "app": set(),
    "errors": set(),
    "periodic": set(),
    # The collector policy (a background loop over the gc module), started by the app's lifespan.
    "gc_policy": {"periodic"},
    "settings": {"errors"},
    "tls": {"settings", "errors"},
    "observability": {"observability", "domain", "errors", "settings"},
    "logs": {"observability", "settings"},
    "store": {"store", "domain", "errors", "settings", "observability"},
    "cache": {"cache", "store"} | SHARED,
    "region": {"region", "store"} | SHARED,
    "auth": {"auth", "domain", "errors", "settings", "observability"},
    "services": {"services", "store", "cache", "region", "auth"} | SHARED,
    "http": {"http", "services", "cache", "region", "auth", "logs", "tls", "gc_policy"} | SHARED,
    "loaders": {"loaders", "services", "store", "settings", "tls", "neo4j_server"} | SHARED,
    # Entry points wire everything together.
    "cli": {"*"},
    "asgi": {"*"},
    # Starting and stopping the local Neo4j: below every layer, it runs with plain Python
    # (`make stop` before the virtualenv exists), importing settings and the certificate maker only.
    "neo4j_server": {"neo4j_server", "settings", "tls"},
}
# Server control asks a starting Neo4j "are you up" (RETURN 1) without the store, which
# needs the virtualenv's settings; it reads and writes no data.
CYPHER_OUTSIDE_STORE = {"app.neo4j_server.home"}
# The one place HTTP names store types: it maps the store's outage errors to 503 problems.
HTTP_STORE_EXCEPTIONS = {("app.http.errors", "app.store.database")}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[0] if len(parts) == 1 or parts[0] == "loaders" else parts[1]


def _resolve(name: str) -> str | None:
    """The project module an import names (`app.store` + `audit` -> `app.store.audit`)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str, top_level_only: bool = False) -> set[str]:
    """The project modules `module` imports (also inside functions, unless `top_level_only`;
    imports for type checking count: modules that name each other's types belong together)."""
    tree = ast.parse(MODULES[module].read_text())
    found: set[str] = set()

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import) and not (top_level_only and nested):
                found.update(filter(None, (_resolve(alias.name) for alias in child.names)))
            elif isinstance(child, ast.ImportFrom) and child.module and not (top_level_only and nested):
                for alias in child.names:
                    target = _resolve(f"{child.module}.{alias.name}")
                    if target:
                        found.add(target)
            visit(child, inner)

    visit(tree, False)
    found.discard(module)
    return found


def layer_violations() -> list[str]:
    broken = []
    for module in MODULES:
        allowed = ALLOWED[layer(module)]
        for target in sorted(imports(module)):
            if "*" in allowed or layer(target) in allowed or (module, target) in HTTP_STORE_EXCEPTIONS:
                continue
            broken.append(f"{module} ({layer(module)}) imports {target} ({layer(target)})")
    return broken


def circles() -> list[list[str]]:
    """Import circles among module-level imports (function-level ones load late, on purpose)."""
    graph = {module: imports(module, top_level_only=True) for module in MODULES}
    found, state, stack = [], dict.fromkeys(graph, 0), []

    def walk(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph[module]):
            if state[target] == 1:
                found.append(stack[stack.index(target) :] + [target])
            elif state[target] == 0:
                walk(target)
        stack.pop()
        state[module] = 2

    for module in graph:
        if state[module] == 0:
            walk(module)
    return found


def test_every_layer_imports_only_the_layers_below_it():
    assert layer_violations() == []


def test_no_import_circles():
    assert circles() == []


def test_the_rule_catches_a_store_import_in_http(monkeypatch):
    """The checks can fail: an HTTP module importing the store is reported."""
    real = imports
    monkeypatch.setattr(
        __import__(__name__),
        "imports",
        lambda module, top_level_only=False: (
            real(module, top_level_only) | ({"app.store.values"} if module == "app.http.values" else set())
        ),
    )
    assert layer_violations() == ["app.http.values (http) imports app.store.values (store)"]


def test_only_the_store_runs_cypher():
    """No module outside app/store runs a statement or opens a session itself."""
    runners = []
    for module, path in MODULES.items():
        if layer(module) == "store":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"execute_read", "execute_write", "session", "execute_query"}
                and module not in CYPHER_OUTSIDE_STORE
            ):
                runners.append(f"{module}:{node.lineno} .{node.func.attr}(...)")
            if isinstance(node, ast.ImportFrom) and node.module == "app.store.database":
                running = {alias.name for alias in node.names} & {"fetch", "execute"}
                if running:
                    runners.append(f"{module}:{node.lineno} imports {sorted(running)}")
            if isinstance(node, ast.ImportFrom) and node.module == "app.store.cypher":
                runners.append(f"{module}:{node.lineno} reads Cypher text")
    assert runners == []


def test_http_never_reaches_for_the_database():
    """Request handlers go through services: no `.db` or `.driver` attribute in app/http."""
    reached = [
        f"{module}:{node.lineno} .{node.attr}"
        for module, path in MODULES.items()
        if layer(module) == "http"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr in {"db", "driver"}
    ]
    assert reached == []


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if layer(m) not in ("cli", "asgi") and not m.endswith("__main__"))
)
def test_every_module_imports(module):
    importlib.import_module(module)
