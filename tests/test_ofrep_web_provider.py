"""A published OFREP provider follows our event streams: OpenFeature's web provider
(@openfeature/ofrep-web-provider 0.4.3, with @openfeature/web-sdk) in Debian's chromium.

The page is served at the live server's own origin (Playwright answers its path from the
files `make ofrep-web` fetched), so the provider calls the service without CORS. Polling is
off: the only way the provider can learn of a change is the event stream its bulk answer named.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from playwright.async_api import Route

from tests.support.browser import WAIT_MS

# The browser and its offline guard: tests/support/browser.py, one browser with test_console_browser.

REPO = Path(__file__).resolve().parent.parent
MODULES = REPO / ".local" / "ofrep-web"
NAMES = ["core", "web-sdk", "ofrep-core", "ofrep-web-provider"]
PAGE_PATH = "/__ofrep-web-test__/"

PAGE = """<!doctype html>
<script type="importmap">%s</script>
<script type="module">
import { OpenFeature, ProviderEvents } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';
const params = new URLSearchParams(location.search);
window.changes = 0;
try {
  await OpenFeature.setContext({ targetingKey: params.get('org') });
  const provider = new OFREPWebProvider({ baseUrl: location.origin, headers: [['X-API-Key', params.get('token')]],
                                          pollInterval: 0, changeDetection: 'sse' });
  OpenFeature.addHandler(ProviderEvents.ConfigurationChanged, () => { window.changes += 1; });
  await OpenFeature.setProviderAndWait(provider);
  window.client = OpenFeature.getClient();
  window.ready = true;
} catch (error) {
  window.failed = String(error);
}
</script>
"""


@pytest.fixture
async def provider_page(offline, live_server):
    missing = [name for name in NAMES if not (MODULES / f"{name}.js").exists()]
    if missing:
        pytest.fail(f"{MODULES} lacks {missing}: run `make ofrep-web` (it fetches the pinned packages with npm pack)")
    imports = {"imports": {f"@openfeature/{name}": f"{PAGE_PATH}{name}.js" for name in NAMES}}

    async def serve(route: Route) -> None:
        name = route.request.url.split(PAGE_PATH, 1)[1].split("?", 1)[0]
        if name == "index.html":
            await route.fulfill(body=PAGE % json.dumps(imports), content_type="text/html")
        else:
            await route.fulfill(path=MODULES / name, content_type="text/javascript")

    page = await offline.context.new_page()
    await page.route(f"{live_server}{PAGE_PATH}**", serve)
    return page


async def test_the_web_provider_refetches_when_its_stream_says_so(
    provider_page, live_server, client, tokens, uid, make_orgs
):
    root, team = uid("root"), uid("team")
    await make_orgs([(root, None), (team, root)])
    requests: list[str] = []
    provider_page.on("request", lambda request: requests.append(request.url))
    token = tokens.mint("reader", root)
    await provider_page.goto(f"{live_server}{PAGE_PATH}index.html?org={team}&token={token}")
    await provider_page.wait_for_function("window.ready || window.failed", timeout=WAIT_MS)
    assert await provider_page.evaluate("window.failed || null") is None
    assert await provider_page.evaluate("window.client.getBooleanValue('beta', false)") is False
    # The provider connected to the stream its bulk answer named.
    deadline = asyncio.get_running_loop().time() + WAIT_MS / 1000
    while not any("/ofrep/v1/event-streams/" in url for url in requests):
        assert asyncio.get_running_loop().time() < deadline, f"the provider opened no event stream: {requests}"
        await asyncio.sleep(0.1)

    # A change on the team's parent, written through the other app instance.
    written = await client.put(f"/v1/orgs/{root}/flags/beta", json={"value": True}, headers=tokens.writer())
    assert written.status_code == 200, written.text
    await provider_page.wait_for_function("window.client.getBooleanValue('beta', false) === true", timeout=WAIT_MS)
    assert await provider_page.evaluate("window.changes") >= 1
    # The re-fetch was the one the stream triggered: it carried the ETag the event announced.
    assert any("flagConfigEtag=" in url for url in requests), requests
