"""The console's and /docs' files as HTTP answers: public, same-origin only (CSP), small, and refusals
as problem documents. Their behaviour in a browser is tests/test_console_browser.py."""

from __future__ import annotations

import re

import pytest

from app.http.console import UI_DIR

PROBLEM = "application/problem+json"
# The ceiling per console asset (issue 16): the first screen stays light.
MAX_ASSET_BYTES = 200 * 1024


def csp(response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    return {part.split()[0]: part.strip() for part in policy.split(";") if part.strip()}


@pytest.mark.parametrize("path", ["/ui", "/ui/", "/ui/index.html"])
async def test_the_console_page_needs_no_token_and_allows_only_this_origin(client, path):
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/ui/console.js">' in response.text
    policy = csp(response)
    assert policy["default-src"] == "default-src 'none'"
    assert policy["script-src"] == "script-src 'self'"
    assert policy["connect-src"] == "connect-src 'self'"
    assert policy["style-src"] == "style-src 'self'"
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "name, media", [("console.js", "javascript"), ("api.js", "javascript"), ("console.css", "text/css")]
)
async def test_console_assets_are_served_with_the_policy(client, name, media):
    response = await client.get(f"/ui/{name}")
    assert response.status_code == 200
    assert media in response.headers["content-type"]
    assert "script-src 'self'" in response.headers["content-security-policy"]


async def test_docs_come_from_local_files_under_a_policy(client):
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    policy = csp(page)
    assert policy["script-src"] == "script-src 'self'" and policy["connect-src"] == "connect-src 'self'"
    for src in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        if src.startswith("data:") or src == "/openapi.json":  # the <noscript> link
            continue
        assert src.startswith("/"), src
        asset = await client.get(src)
        assert asset.status_code == 200, src
        assert asset.headers["content-security-policy"] == page.headers["content-security-policy"]
    bundle = await client.get("/docs/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text


@pytest.mark.parametrize(
    "path", ["/ui/missing.js", "/ui/..%2Fhttp%2Fconsole.py", "/docs/swagger-editor.js", "/docs/LICENSE"]
)
async def test_files_that_are_not_served_are_404_problems(client, path):
    response = await client.get(path)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_the_console_files_take_no_writes(client):
    response = await client.post("/ui/index.html")
    assert response.status_code == 405
    assert response.headers["content-type"].startswith(PROBLEM)


def test_no_console_asset_is_over_200_kb():
    sizes = {path.name: path.stat().st_size for path in UI_DIR.iterdir() if path.is_file()}
    assert sizes and all(size <= MAX_ASSET_BYTES for size in sizes.values()), sizes


def test_console_files_name_no_other_host():
    """Nothing is loaded from elsewhere: every URL in the console's files is a path on this service."""
    for path in UI_DIR.iterdir():
        text = path.read_text()
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text.replace("http://www.w3.org", "")), path
        assert "localStorage" not in text, f"{path.name}: the token may live in session storage only"
