"""Test harness: one real Neo4j for the session, and the app served in-process over it.

The server is, in order of preference: the one `NEO4J_URI` names (with
`NEO4J_USER`/`NEO4J_PASSWORD`); a Testcontainers Neo4j when a Docker engine answers;
else a disposable local server (app/neo4j_server) on free ports, which boots in the background
while the tests that need no database run first, and is killed at the end. Tests share the
database, so each builds its own orgs under unique ids. Under pytest-xdist (`make test`) each
worker is a session of its own, with its own server. The pieces other modules reuse (ports,
Neo4j homes, served processes, the browser) live in tests/support/.

Markers: `unit` (no Neo4j, no process: `make unit`) is given to every test that asks for no
database fixture; `slow` marks the modules that start a JVM or a browser of their own.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.auth.tokens import mint_dev_token
from app.http.app import create_app
from app.neo4j_server import Neo4jHome
from app.settings import Settings
from app.store import audit as audit_store
from tests.support.app import migrate
from tests.support.live import serving
from tests.support.neo4j import BootingHome, Neo4jServer, running_home

# The session's browser for the browser tests (launched only when one asks for it).
pytest_plugins = ["tests.support.browser"]

REPO = Path(__file__).resolve().parent.parent
TEST_CATALOG = Path(__file__).parent / "data" / "catalog.json"


@functools.cache
def _docker_engine_answers() -> bool:
    try:
        import docker  # type: ignore[import-not-found]

        docker.from_env().ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session", autouse=True)
def _local_neo4j(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BootingHome | None]:
    """The session's local Neo4j, booting from the first test on when a collected test will need it:
    the tests that need none (ordered first, see pytest_collection_modifyitems) run meanwhile.
    None when NEO4J_URI or a Docker engine provides the server, or no test needs one."""
    wanted = any("neo4j_server" in item.fixturenames for item in request.session.items)
    if not wanted or os.environ.get("NEO4J_URI") or _docker_engine_answers():
        yield None
        return
    booting = BootingHome(tmp_path_factory.mktemp("neo4j-home"), heap="768m", pagecache="256m")
    try:
        yield booting
    finally:
        booting.close()


@pytest.fixture(scope="session")
def neo4j_server(_local_neo4j: BootingHome | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Neo4jServer]:
    if _local_neo4j is not None:
        yield Neo4jServer.of(_local_neo4j.wait())
        return
    if os.environ.get("NEO4J_URI"):
        yield Neo4jServer(
            os.environ["NEO4J_URI"], os.environ.get("NEO4J_USER", "neo4j"), os.environ.get("NEO4J_PASSWORD", "")
        )
        return
    if _docker_engine_answers():
        from testcontainers.neo4j import Neo4jContainer  # type: ignore[import-not-found]

        with Neo4jContainer("neo4j:5.26-community") as container:
            yield Neo4jServer(container.get_connection_url(), "neo4j", container.password)
        return
    # Asked for without any collected test naming it (request.getfixturevalue): start it now.
    with running_home(tmp_path_factory.mktemp("neo4j-home"), heap="768m", pagecache="256m") as home:
        yield Neo4jServer.of(home)


@pytest.fixture(scope="session")
def spare_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Neo4jHome]:
    """A second local Neo4j, shared in turn by the modules that take a server down, replace its whole
    database or need one of their own (test_bulk_import imports over it, test_outage kills it,
    test_region's region keeps its copy in it): one JVM for the three instead of one each. Handed
    over stopped; each user starts it when it needs it running (tests.support.neo4j.started_and_emptied).
    The three are one group (WORKER_GROUPS below), so under xdist they run on one worker."""
    with running_home(tmp_path_factory.mktemp("spare-neo4j"), start=False) as home:
        yield home


@pytest.fixture(scope="session")
def base_settings(neo4j_server: Neo4jServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    keys = tmp_path_factory.mktemp("keys")
    return Settings(
        neo4j_uri=neo4j_server.uri,
        neo4j_user=neo4j_server.user,
        neo4j_password=neo4j_server.password,
        jwt_dev_key_file=keys / "dev-jwt.key",
        flags_file=TEST_CATALOG,
        watch_catalog=False,
        log_json=False,
        log_level="WARNING",
        max_body_bytes=4 * 1024 * 1024,
        bulk_batch_size=500,
        # Apps served inside this process share it with pytest, whose garbage is not a server's:
        # no freezing here (tests/test_gc_policy.py tests the policy; `graphflags serve` runs it).
        gc_freeze_interval=0,
    )


@pytest.fixture(scope="session")
async def migrated(base_settings: Settings) -> Settings:
    return await migrate(base_settings)


@pytest.fixture
def settings_for(migrated: Settings, tmp_path: Path) -> Callable[..., Settings]:
    """Settings for an extra app instance with its own copy of the catalog file."""

    def build(catalog: Path | None = None, **overrides) -> Settings:
        flags_file = tmp_path / f"flags-{uuid.uuid4().hex[:6]}.json"
        shutil.copy(catalog or TEST_CATALOG, flags_file)
        return migrated.model_copy(update={"flags_file": flags_file, **overrides})

    return build


@pytest.fixture(scope="session")
async def app(migrated: Settings):
    application = create_app(migrated)
    async with LifespanManager(application, startup_timeout=60):
        yield application


@pytest.fixture(autouse=True)
async def shared_app_settled(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """A test on the session's shared app starts with its cache trusted and no move pending.

    The app's change-feed follower runs only while the session's event loop does: a move another
    instance made in an earlier test is heard at the follower's next poll, which may fall in the
    middle of this test and drop every cached chain (as any move must); a stretch of synchronous
    tests leaves the cache untrusted (the feed silent past its bound) until that poll. Either
    way a test that checks what the cache holds would fail for what an earlier test did. So
    wait, when there is reason to, for the follower's own loop to catch up (a poll of ours beside
    it would not do: one of its polls, begun earlier, could still land after ours)."""
    if "app" not in request.fixturenames:
        yield
        return
    services = request.getfixturevalue("app").state.services
    follower, cache = services.follower, services.cache
    moved_at = 0
    if follower.after is not None:
        read = await services.db.read_unqueued(audit_store.invalidations, follower.after)
        moved_at = max((seq for seq, action, _org, _flag in read.changes if action == "org.move"), default=0)
    deadline = time.monotonic() + 30
    while not cache.trustworthy or (follower.after or 0) < moved_at:
        assert time.monotonic() < deadline, (
            f"the shared app's change-feed follower did not catch up within 30 s: it resumes after seq "
            f"{follower.after}, a move is pending at {moved_at}, the feed last heard {cache.lag:.1f} s ago"
        )
        await asyncio.sleep(0.01)
    yield


@pytest.fixture(scope="session")
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://graphflags.test") as http:
        yield http


@pytest.fixture(scope="session")
def live_server(migrated: Settings) -> Iterator[str]:
    """The app served by uvicorn over real HTTP, in a thread: for clients that bring their
    own HTTP stack (the OpenFeature SDK's `requests`) and for streamed answers (SSE), which
    httpx's in-process transport would buffer whole. Yields the base URL."""
    with serving(migrated) as base:
        yield base


class Tokens:
    """Mints development tokens for the test app: `tokens.admin()`, `tokens.reader("acme")`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def mint(self, role: str | None, *orgs: str, sub: str = "tester", ttl: int = 600, **extra) -> str:
        return mint_dev_token(
            self.settings, subject=sub, roles=[role] if role else [], orgs=list(orgs) or ["*"], ttl=ttl, extra=extra
        )

    def headers(self, role: str | None, *orgs: str, sub: str = "tester") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.mint(role, *orgs, sub=sub)}"}

    def admin(self, *orgs: str, sub: str = "tester") -> dict[str, str]:
        return self.headers("admin", *orgs, sub=sub)

    def writer(self, *orgs: str, sub: str = "tester") -> dict[str, str]:
        return self.headers("writer", *orgs, sub=sub)

    def reader(self, *orgs: str, sub: str = "tester") -> dict[str, str]:
        return self.headers("reader", *orgs, sub=sub)


@pytest.fixture(scope="session")
def tokens(migrated: Settings) -> Tokens:
    return Tokens(migrated)


@pytest.fixture
def uid() -> Callable[[str], str]:
    """Org ids unique to this test: `uid("root")` -> "t3f9a1-root"."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    return lambda name: f"{prefix}-{name}"


@pytest.fixture
def make_orgs(client: httpx.AsyncClient, tokens: Tokens):
    """Create `[(id, parent), ...]` through the API and check it worked."""

    async def create(pairs: list[tuple[str, str | None]]) -> None:
        body = [{"id": org, "parent": parent} for org, parent in pairs]
        response = await client.post("/v1/orgs/bulk", json=body, headers=tokens.admin())
        assert response.status_code == 200, response.text
        assert response.json()["created"] == len(pairs)

    return create


@pytest.fixture
async def chain6(uid, make_orgs) -> list[str]:
    """A line of seven orgs, root first: l0 -> l1 -> ... -> l6 (depth 6 below the root)."""
    ids = [uid(f"l{depth}") for depth in range(7)]
    await make_orgs([(org, ids[depth - 1] if depth else None) for depth, org in enumerate(ids)])
    return ids


# Fixtures that reach the shared Neo4j (directly or through the app): a test that asks for none
# of them is a unit test. Modules that start servers of their own are marked `slow` themselves.
_DATABASE_FIXTURES = {
    "neo4j_server",
    "base_settings",
    "migrated",
    "settings_for",
    "app",
    "client",
    "live_server",
    "tokens",
    "make_orgs",
    "chain6",
}


# Modules that share a server or a browser of their own. Under pytest-xdist (`make test`) each group
# runs whole on one worker, so its server starts once (spare-neo4j: tests/conftest.py's spare_home;
# browser: tests/support/browser.py), and the groups go first, longest first: started early, they
# end with the short tests that fill the other worker.
WORKER_GROUPS = {
    "test_bulk_import.py": "spare-neo4j",
    "test_outage.py": "spare-neo4j",
    "test_region.py": "spare-neo4j",
    "test_bolt_tls.py": "tls-neo4j",
    "test_console_browser.py": "browser",
    "test_ofrep_web_provider.py": "browser",
    "test_fuzz.py": "fuzz",  # its seeded tree, planted once
}
LONGEST_GROUPS_FIRST = ("spare-neo4j", "tls-neo4j", "browser", "fuzz")


def _run_order(item: pytest.Item) -> int:
    """Tests that need no database first (they run while the session's Neo4j boots), then the
    groups, longest first, then the rest."""
    if item.get_closest_marker("unit") is not None:
        return 0
    group = WORKER_GROUPS.get(item.path.name)
    if group is not None:
        return 1 + LONGEST_GROUPS_FIRST.index(group)
    return 1 + len(LONGEST_GROUPS_FIRST)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """xdist's scopes, with WORKER_GROUPS' modules as one scope each and every other test a scope of
    its own. (Not `--dist loadgroup` and xdist_group marks: with pytest 9.2's node ids xdist drops
    the marks' groups silently, pytest-dev/pytest-xdist#1386.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByWorkerGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return WORKER_GROUPS.get(nodeid.split("::", 1)[0].rsplit("/", 1)[-1], nodeid)

    return ByWorkerGroup(config, log)


def _own_node_id(item: pytest.Item) -> None:
    """schemathesis 4.32 makes one item per API operation (`test_...[GET /healthz]`) with pytest 9.2's
    `originalname` and no callspec, so pytest gives all 31 the node id of the bare function: reports
    cannot tell them apart and xdist, which schedules by node id, ran one of the 31 and dropped the
    rest without a word. Each gets the id its name already carries."""
    if not isinstance(item, pytest.Function) or item.name == item.originalname or item.nodeid.endswith("]"):
        return
    params = item.name.removeprefix(item.originalname).removeprefix("[").removesuffix("]")
    item._id = item.parent.id.child(item.originalname).with_params(params)  # type: ignore[union-attr]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        _own_node_id(item)
        if item.get_closest_marker("slow") is None and not _DATABASE_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.unit)
    shared = [nodeid for nodeid, count in Counter(item.nodeid for item in items).items() if count > 1]
    if shared:  # xdist schedules by node id: it would run one test of each such set and drop the rest
        raise pytest.UsageError(f"tests with the same node id (xdist would run only one of each): {shared[:5]}")
    # Stable: within each kind, tests keep the order of their files (TestRegion's steps depend on it).
    items.sort(key=_run_order)
