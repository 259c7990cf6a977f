"""The console (/ui) and /docs in a real browser: Debian's chromium driven by Playwright, against the app
served over HTTP (uvicorn, `live_server`) on the test Neo4j.

Every request the page makes to anything but this service is refused and recorded, and each test
asserts there was none: the pages work offline. `make screenshots` runs this module with
GRAPHFLAGS_SCREENSHOTS=docs/img, and the same steps write the README's pictures.

Needs: Debian's `chromium` (apt-get install chromium; .ci/run does) and axe-core's axe.min.js, which
`make axe` fetches from the npm registry into .local/axe/ (make test does it first).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, Route, expect

from tests.support.browser import Offline

REPO = Path(__file__).resolve().parent.parent
AXE = REPO / ".local" / "axe" / "axe.min.js"
SCREENSHOTS = os.environ.get("GRAPHFLAGS_SCREENSHOTS")
# The browser (one for the session) and the offline guard are tests/support/browser.py's fixtures;
# under xdist this module and test_ofrep_web_provider run on one worker (tests/conftest.py).


@pytest.fixture
async def page(offline: Offline) -> Page:
    page = await offline.context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # A CSP violation shows as a console error; so would a script failing.
    page.on(
        "console",
        lambda message: (
            errors.append(message.text) if message.type == "error" and "status of 4" not in message.text else None
        ),
    )
    yield page
    assert errors == [], f"errors in the page: {errors}"


@pytest.fixture(scope="module")
async def api(live_server: str):
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as http:
        yield http


@pytest.fixture
async def tree(api: httpx.AsyncClient, tokens) -> dict[str, str]:
    """acme -> {eu -> {de, fr}, us}, plus another tenant: unique ids per test."""
    tag = f"ui{uuid.uuid4().hex[:6]}"
    ids = {name: f"{tag}-{name}" for name in ("acme", "eu", "us", "de", "fr", "globex")}
    rows = [
        (ids["acme"], None),
        (ids["eu"], ids["acme"]),
        (ids["us"], ids["acme"]),
        (ids["de"], ids["eu"]),
        (ids["fr"], ids["eu"]),
        (ids["globex"], None),
    ]
    response = await api.post(
        "/v1/orgs/bulk", json=[{"id": org, "parent": parent} for org, parent in rows], headers=tokens.admin()
    )
    assert response.status_code == 200, response.text
    response = await api.put(f"/v1/orgs/{ids['eu']}/flags/dark-mode", json={"value": True}, headers=tokens.admin())
    assert response.status_code == 200, response.text
    return ids


async def shot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


async def sign_in(page: Page, base: str, token: str) -> None:
    await page.goto(f"{base}/ui")
    await page.get_by_label("Token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Find an organization")).to_be_visible()


async def open_org(page: Page, base: str, org: str) -> None:
    await page.goto(f"{base}/ui/#org={org}")
    await expect(page.locator("#org-title")).to_have_text(org)


def _in(seconds: int) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def flag_row(page: Page, flag: str):
    return page.locator(f'#flags tr[data-flag="{flag}"]')


# --------------------------------------------------------------------------- the console


async def test_sign_in_find_an_org_and_walk_to_a_child(page, live_server, tokens, tree):
    await page.goto(f"{live_server}/ui")
    await shot(page, "console-sign-in")
    token = tokens.mint("admin", sub="support-ann")
    await page.get_by_label("Token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#who")).to_contain_text("support-ann")
    # The token went into session storage, not the address.
    assert token not in page.url

    await page.get_by_label("Org id starts with").fill(tree["acme"][:-2])
    await page.get_by_role("button", name="Find").click()
    await page.get_by_role("link", name=tree["acme"], exact=True).click()
    await expect(page.locator("#org-title")).to_have_text(tree["acme"])
    children = page.locator("#children")
    await expect(children.get_by_role("link")).to_have_text([tree["eu"], tree["us"]])
    await expect(children.locator("li").first).to_contain_text("2 below")

    await children.get_by_role("link", name=tree["eu"]).click()
    await expect(page.locator("#org-title")).to_have_text(tree["eu"])
    crumbs = page.get_by_role("navigation", name="Ancestors")
    await expect(crumbs.get_by_role("link")).to_have_text([tree["acme"]])
    await expect(page.locator("#children").get_by_role("link")).to_have_text([tree["de"], tree["fr"]])
    await shot(page, "console-org")
    # Back up the tree through the breadcrumb.
    await crumbs.get_by_role("link", name=tree["acme"]).click()
    await expect(page.locator("#org-title")).to_have_text(tree["acme"])


async def test_a_value_and_its_explanation(page, live_server, tokens, tree):
    await sign_in(page, live_server, tokens.mint("reader", tree["acme"]))
    await open_org(page, live_server, tree["de"])
    row = flag_row(page, "dark-mode")
    await expect(row.locator("td").nth(0)).to_have_text("true")
    await expect(row.locator("td").nth(1)).to_have_text("inherited")
    await expect(row.locator("td").nth(2)).to_have_text(tree["eu"])
    # Filtered by flag set: storage flags only.
    await page.get_by_label("Flag set").select_option("storage")
    await expect(page.locator("#flags tbody th")).to_have_text(["max-upload-mb", "retention-days"])
    await page.get_by_label("Flag set").select_option("")
    await expect(flag_row(page, "dark-mode")).to_be_visible()

    await page.get_by_role("button", name="Explain dark-mode").click()
    panel = page.locator("#explain")
    await expect(panel.get_by_role("heading")).to_have_text(f"Why {tree['de']} gets dark-mode = true")
    await expect(panel.locator("#explain-chain li")).to_have_text(
        [f"{tree['de']} — not set", f"{tree['eu']} = true ← wins", f"{tree['acme']} — not set"]
    )
    # A reader sees no way to change values.
    await expect(page.get_by_role("button", name="Change dark-mode")).to_have_count(0)
    await shot(page, "console-explain")


async def test_toggle_a_value_through_the_preview_and_see_it_in_audit_and_feed(page, live_server, api, tokens, tree):
    await sign_in(page, live_server, tokens.mint("admin", tree["acme"], sub="support-bob"))
    await expect(page.locator("#feed-state")).to_contain_text("Connected")
    await open_org(page, live_server, tree["fr"])
    await expect(flag_row(page, "beta").locator("td").nth(0)).to_have_text("false")

    await page.get_by_role("button", name="Change beta").click()
    await expect(page.get_by_label("New value (boolean)")).to_have_value("true")
    await page.get_by_role("button", name="Preview setting this value").click()
    preview = page.locator("#preview-text")
    await expect(preview).to_contain_text(f"Set beta to true on {tree['fr']}")
    # With the service's dry run, the preview counts the orgs it changes; without it, it says it cannot.
    await expect(preview).to_have_text(re.compile(r"this changes 1 org\.|cannot preview"))
    await shot(page, "console-preview")
    # Nothing is written before the confirmation.
    unwritten = await api.get(f"/v1/orgs/{tree['fr']}/flags/beta", headers=tokens.reader())
    assert unwritten.json()["reason"] == "default"
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.locator("#status")).to_have_text(f"beta set on {tree['fr']}.")
    row = flag_row(page, "beta")
    await expect(row.locator("td").nth(0)).to_have_text("true")
    await expect(row.locator("td").nth(1)).to_have_text("own")

    audit = page.locator("#audit tbody tr").first
    await expect(audit).to_contain_text("flag.set")
    await expect(audit).to_contain_text("support-bob")
    await expect(audit.locator("td").nth(4)).to_have_text(tree["fr"])
    feed = page.locator("#feed li").first
    await expect(feed).to_contain_text(f"flag.set {tree['fr']} beta: — → true by support-bob")

    # And back: clearing goes through the same preview.
    await page.get_by_role("button", name="Change beta").click()
    await page.get_by_role("button", name="Preview clearing the org's value").click()
    await expect(preview).to_contain_text(f"Clear beta on {tree['fr']}")
    await page.get_by_role("button", name="Confirm").click()
    await expect(row.locator("td").nth(1)).to_have_text("default")
    await expect(page.locator("#feed li").first).to_contain_text(f"flag.clear {tree['fr']} beta: true → —")
    await shot(page, "console-audit-feed")


async def test_the_preview_shows_the_dry_run_count_and_sample(page, live_server, api, tokens, tree):
    """With the service's dry run (docs/api.md, "Safe changes"), the preview says how many orgs change and
    names a sample. Where this build does not document dry_run yet, its answer is stood in for at
    the browser, in the contract's shape; nothing is written either way until Confirm."""
    spec = (await api.get("/openapi.json")).json()
    put = spec["paths"]["/v1/orgs/{org}/flags/{flag}"]["put"]
    if not any(param["name"] == "dry_run" for param in put.get("parameters", [])):
        put.setdefault("parameters", []).append({"name": "dry_run", "in": "query", "schema": {"type": "boolean"}})

        async def contract(route: Route) -> None:
            await route.fulfill(json=spec)

        async def dry_run(route: Route) -> None:
            assert route.request.method == "PUT" and json.loads(route.request.post_data) == {"value": True}
            await route.fulfill(
                json={
                    "dry_run": True,
                    "affected": {"orgs": 3, "exact": True, "sample": [tree["eu"], tree["de"], tree["fr"]]},
                }
            )

        await page.route(re.compile(r"/openapi\.json$"), contract)
        await page.route(re.compile(r"/flags/beta\?dry_run=true$"), dry_run)
    await sign_in(page, live_server, tokens.mint("writer", tree["acme"]))
    await open_org(page, live_server, tree["eu"])
    await page.get_by_role("button", name="Change beta").click()
    await page.get_by_role("button", name="Preview setting this value").click()
    await expect(page.locator("#preview-text")).to_have_text(f"Set beta to true on {tree['eu']}: this changes 3 orgs.")
    sample = page.get_by_role("list", name="Sample of affected orgs").get_by_role("link")
    assert sorted(await sample.all_text_contents()) == sorted([tree["eu"], tree["de"], tree["fr"]])
    unwritten = await api.get(f"/v1/orgs/{tree['eu']}/flags/beta", headers=tokens.reader())
    assert unwritten.json()["reason"] == "default"
    await page.get_by_role("button", name="Back").click()
    await expect(page.get_by_label("New value (boolean)")).to_be_focused()


async def test_a_refused_value_is_a_readable_message(page, live_server, tokens, tree):
    await sign_in(page, live_server, tokens.mint("writer", tree["acme"]))
    await open_org(page, live_server, tree["us"])
    await page.get_by_role("button", name="Change max-upload-mb").click()
    await page.get_by_label("New value (number)").fill("5000")
    await page.get_by_role("button", name="Preview setting this value").click()
    # The dry run makes every check of the real request, so the refusal comes with the preview,
    # before anything could be confirmed: the problem document's title and detail, not a
    # status code or a stack.
    await expect(page.get_by_role("alert")).to_contain_text("Value does not fit the flag")
    await expect(page.get_by_role("alert")).to_contain_text("1024")
    await expect(page.get_by_role("button", name="Confirm")).to_be_hidden()


async def test_a_scoped_token_is_refused_elsewhere_with_a_clean_message(page, live_server, tokens, tree):
    await sign_in(page, live_server, tokens.mint("admin", tree["eu"]))
    # Its own subtree root is offered; the search finds nothing of another tenant's.
    await expect(page.locator("#root-list").get_by_role("link")).to_have_text([tree["eu"]])
    await page.get_by_label("Org id starts with").fill(tree["globex"])
    await page.get_by_role("button", name="Find").click()
    await expect(page.locator("#found-note")).to_have_text("No organization you may see starts with that.")

    for elsewhere in (tree["globex"], tree["acme"], "no-such-org"):
        await page.goto(f"{live_server}/ui/#org={elsewhere}")
        await expect(page.get_by_role("alert")).to_have_text(
            "Not allowed: the organization is outside this token's subtrees."
        )
        await expect(page.locator("#org-view")).to_be_hidden()
    await shot(page, "console-not-allowed")
    await open_org(page, live_server, tree["de"])
    # Its breadcrumb shows the ancestors the service named; the feed is limited to its subtree.
    await expect(page.get_by_role("alert")).to_be_hidden()


async def test_an_expired_token_returns_to_sign_in(page, live_server, tokens):
    await page.goto(f"{live_server}/ui")
    await page.get_by_label("Token").fill(tokens.mint("reader", ttl=-1))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#status")).to_have_text(
        "Your token was not accepted (expired, or not for this service). Sign in again."
    )
    await expect(page.get_by_label("Token")).to_be_focused()
    assert await page.evaluate("sessionStorage.length") == 0


async def test_keyboard_only_sign_in_and_navigation(page, live_server, tokens, tree):
    await page.goto(f"{live_server}/ui")
    # The token field has the focus on arrival; Enter submits.
    await page.keyboard.type(tokens.mint("reader", tree["acme"]))
    await page.keyboard.press("Enter")
    await expect(page.locator("#root-list").get_by_role("link")).to_have_text([tree["acme"]])
    await page.get_by_label("Org id starts with").focus()
    await page.keyboard.type(tree["eu"])
    await page.keyboard.press("Enter")
    await expect(page.locator("#found").get_by_role("link")).to_have_text([tree["eu"]])
    # Tab from the search button reaches the result; Enter follows it; the heading takes the focus.
    await page.get_by_role("button", name="Find").focus()
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == tree["eu"]
    await page.keyboard.press("Enter")
    await expect(page.locator("#org-title")).to_be_focused()
    # Explain through the keyboard too.
    await page.get_by_role("button", name="Explain dark-mode").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#explain-title")).to_be_focused()


# --------------------------------------------------------------------------- scheduled, sealed, rollouts


async def local_time_in(page: Page, seconds: int) -> str:
    """`seconds` from now as a datetime-local input takes it: the browser's local time, to the second."""
    return await page.evaluate(
        """(seconds) => {
        const moment = new Date(Date.now() + seconds * 1000);
        moment.setMinutes(moment.getMinutes() - moment.getTimezoneOffset());
        return moment.toISOString().slice(0, 19);
    }""",
        seconds,
    )


async def schedules_of(api: httpx.AsyncClient, tokens, org: str) -> list[dict]:
    listed = await api.get("/v1/schedules", params={"org": org}, headers=tokens.writer())
    assert listed.status_code == 200, listed.text
    return listed.json()["schedules"]


async def test_a_scheduled_change_is_made_listed_and_cancelled(page, live_server, api, tokens, tree):
    # A change scheduled on an ancestor touches the org too: the console lists it with the org's own.
    above = await api.put(
        f"/v1/orgs/{tree['acme']}/flags/theme",
        json={"value": "dark", "at": _in(7200)},
        headers=tokens.writer(sub="planner-ann"),
    )
    assert above.status_code == 202, above.text
    await sign_in(page, live_server, tokens.mint("writer", tree["acme"], sub="planner-pat"))
    await open_org(page, live_server, tree["fr"])
    await expect(page.locator("#schedule-list tbody tr")).to_have_count(1)

    await page.get_by_role("button", name="Change beta").click()
    await page.get_by_label("Apply at").fill(await local_time_in(page, 3600))
    await page.get_by_role("button", name="Preview setting this value").click()
    preview = page.locator("#preview-text")
    await expect(preview).to_contain_text(f"Set beta to true on {tree['fr']}, at ")
    # The dry run of a scheduled change counts against the tree as it is now.
    await expect(preview).to_have_text(re.compile(r"this changes 1 org as the tree is now\.$"))
    assert await schedules_of(api, tokens, tree["fr"]) == []  # nothing taken before Confirm
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.locator("#status")).to_contain_text(f"Scheduled: Set beta to true on {tree['fr']}, at ")

    taken = await schedules_of(api, tokens, tree["fr"])
    assert [(s["flag"], s["value"], s["actor"]) for s in taken] == [("beta", True, "planner-pat")]
    at = datetime.fromisoformat(taken[0]["at"])
    assert timedelta(minutes=55) < at - datetime.now(UTC) < timedelta(minutes=65)
    # Not applied now: the value is unchanged.
    await expect(flag_row(page, "beta").locator("td").nth(1)).to_have_text("default")
    rows = page.locator("#schedule-list tbody tr")
    await expect(rows).to_have_count(2)  # soonest first: fr's in an hour, then acme's in two
    await expect(rows.nth(0).locator("td")).to_have_text(
        [re.compile(r"\d"), tree["fr"], "beta", "set to true", "planner-pat", "Cancel"]
    )
    await expect(rows.nth(1).locator("td").nth(1)).to_have_text(tree["acme"])
    await shot(page, "console-schedules")
    serious = [v for v in await axe(page) if v["impact"] in ("serious", "critical")]
    assert serious == [], json.dumps(serious, indent=1)

    # Listed from the parent too (its subtree), not from a sibling.
    await open_org(page, live_server, tree["eu"])
    await expect(page.locator("#schedule-list tbody tr td:nth-child(2)")).to_have_text([tree["fr"], tree["acme"]])
    await open_org(page, live_server, tree["de"])
    await expect(page.locator("#schedule-list tbody tr td:nth-child(2)")).to_have_text([tree["acme"]])

    await open_org(page, live_server, tree["fr"])
    await page.get_by_role("button", name=f"Cancel the scheduled change of beta on {tree['fr']}").click()
    await expect(page.locator("#status")).to_have_text(f"Cancelled the scheduled change of beta on {tree['fr']}.")
    await expect(page.locator("#schedule-list tbody tr td:nth-child(2)")).to_have_text([tree["acme"]])
    assert await schedules_of(api, tokens, tree["fr"]) == []
    assert [s["schedule"] for s in await schedules_of(api, tokens, tree["acme"])] == [above.json()["schedule"]]
    assert (await api.delete(f"/v1/schedules/{above.json()['schedule']}", headers=tokens.writer())).status_code == 204


async def test_a_scheduled_clear_through_the_preview(page, live_server, api, tokens, tree):
    await sign_in(page, live_server, tokens.mint("writer", tree["acme"], sub="planner-pat"))
    await open_org(page, live_server, tree["eu"])
    await page.get_by_role("button", name="Change dark-mode").click()
    await page.get_by_label("Apply at").fill(await local_time_in(page, 1800))
    await page.get_by_role("button", name="Preview clearing the org's value").click()
    await expect(page.locator("#preview-text")).to_contain_text(
        f"Clear dark-mode on {tree['eu']} (it inherits again), at "
    )
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.locator("#schedule-list tbody tr td")).to_have_text(
        [re.compile(r"\d"), tree["eu"], "dark-mode", "clear", "planner-pat", "Cancel"]
    )
    taken = await schedules_of(api, tokens, tree["eu"])
    assert [(s["flag"], s["value"]) for s in taken] == [("dark-mode", None)]
    await expect(flag_row(page, "dark-mode").locator("td").nth(1)).to_have_text("own")  # still set until then
    assert (await api.delete(f"/v1/schedules/{taken[0]['schedule']}", headers=tokens.writer())).status_code == 204


async def test_a_time_in_the_past_is_refused_at_the_preview(page, live_server, api, tokens, tree):
    await sign_in(page, live_server, tokens.mint("writer", tree["acme"]))
    await open_org(page, live_server, tree["us"])
    await page.get_by_role("button", name="Change beta").click()
    await page.get_by_label("Apply at").fill(await local_time_in(page, -60))
    await page.get_by_role("button", name="Preview setting this value").click()
    await expect(page.get_by_role("alert")).to_contain_text("is not in the future")
    await expect(page.get_by_role("button", name="Confirm")).to_be_hidden()
    assert await schedules_of(api, tokens, tree["us"]) == []


async def test_a_sealed_value_is_shown_as_sealed(page, live_server, api, tokens, tree):
    # eu set dark-mode = true (the tree fixture); an admin now seals false above it, on acme.
    sealed = await api.put(
        f"/v1/orgs/{tree['acme']}/flags/dark-mode", json={"value": False, "sealed": True}, headers=tokens.admin()
    )
    assert sealed.status_code == 200, sealed.text
    await sign_in(page, live_server, tokens.mint("writer", tree["acme"]))
    await open_org(page, live_server, tree["de"])
    row = flag_row(page, "dark-mode")
    await expect(row.locator("td")).to_have_text(["false", "sealed", tree["acme"], re.compile("Explain")])

    await page.get_by_role("button", name="Explain dark-mode").click()
    await expect(page.locator("#explain-summary")).to_have_text(
        f"{tree['acme']} sealed this value: nothing set below it applies."
    )
    # eu's own value is kept but inactive; acme's is marked sealed and wins.
    await expect(page.locator("#explain-chain li")).to_have_text(
        [f"{tree['de']} — not set", f"{tree['eu']} = true (inactive)", f"{tree['acme']} = false sealed ← wins"]
    )
    await shot(page, "console-sealed")
    serious = [v for v in await axe(page) if v["impact"] in ("serious", "critical")]
    assert serious == [], json.dumps(serious, indent=1)

    # A writer below the seal is refused at the preview, with the sealing org named.
    await page.get_by_role("button", name="Change dark-mode").click()
    await page.get_by_role("button", name="Preview setting this value").click()
    await expect(page.get_by_role("alert")).to_contain_text(tree["acme"])
    await expect(page.get_by_role("button", name="Confirm")).to_be_hidden()


ROLLOUT = {"percent": 25, "value": True, "unit_depth": 1}


async def test_a_rollout_is_shown_with_its_percent_and_unit(page, live_server, api, tokens, tree):
    """A value with reason `split` (docs/api.md, "Rollouts along the tree"). Until this server takes
    rollouts, its answers are stood in for at the browser, in the contract's shapes: the lookup's
    `{"value", "reason": "split", "source_org"}`, and an explain chain whose source entry carries the
    `rollout` object as it was set (the contract does not spell explain's rollout entry out)."""
    probe = await api.put(
        f"/v1/orgs/{tree['acme']}/flags/beta",
        params={"dry_run": "true"},
        json={"rollout": {**ROLLOUT, "percent": 100}},
        headers=tokens.writer(),
    )
    if probe.status_code == 200:
        taken = await api.put(
            f"/v1/orgs/{tree['acme']}/flags/beta",
            json={"rollout": {**ROLLOUT, "percent": 100}},
            headers=tokens.writer(),
        )
        assert taken.status_code == 200, taken.text
    else:
        chain = [
            {"org": tree["de"], "value": None},
            {"org": tree["eu"], "value": None},
            {"org": tree["acme"], "value": None, "rollout": {**ROLLOUT, "percent": 100}},
        ]

        async def flags(route: Route) -> None:
            answer = await route.fetch()
            body = await answer.json()
            body["flags"]["beta"] = {"value": True, "reason": "split", "source_org": tree["acme"]}
            await route.fulfill(response=answer, json=body)

        async def explain(route: Route) -> None:
            await route.fulfill(
                json={
                    "org": tree["de"],
                    "flag": "beta",
                    "value": True,
                    "reason": "split",
                    "source_org": tree["acme"],
                    "chain": chain,
                }
            )

        await page.route(re.compile(rf"/v1/orgs/{tree['de']}/flags(\?.*)?$"), flags)
        await page.route(re.compile(rf"/v1/orgs/{tree['de']}/flags/beta/explain$"), explain)
    await sign_in(page, live_server, tokens.mint("reader", tree["acme"]))
    await open_org(page, live_server, tree["de"])
    row = flag_row(page, "beta")
    await expect(row.locator("td").nth(0)).to_have_text("true")
    await expect(row.locator("td").nth(1)).to_contain_text("split")
    await expect(row.locator("td").nth(1)).to_contain_text("rollout")
    await expect(row.locator("td").nth(2)).to_have_text(tree["acme"])
    await page.get_by_role("button", name="Explain beta").click()
    await expect(page.locator("#explain-summary")).to_have_text(
        f"A rollout set on {tree['acme']} (rollout of true to 100% of units 1 level below) includes this org"
        f" through its unit {tree['eu']}."
    )
    await shot(page, "console-rollout")


async def test_a_writer_sets_a_rollout_through_the_preview(page, live_server, api, tokens, tree):
    """The body is the contract's `{"rollout": {"percent", "value", "unit_depth"}}`; where this server does
    not take rollouts yet, its dry run is stood in for at the browser (the preview's count), and
    nothing is confirmed."""
    sent = []
    probe = await api.put(
        f"/v1/orgs/{tree['acme']}/flags/beta",
        params={"dry_run": "true"},
        json={"rollout": ROLLOUT},
        headers=tokens.writer(),
    )
    served = probe.status_code == 200

    async def dry_run(route: Route) -> None:
        sent.append(json.loads(route.request.post_data))
        if served:
            await route.continue_()
        else:
            await route.fulfill(
                json={"dry_run": True, "affected": {"orgs": 2, "exact": True, "sample": [tree["eu"], tree["de"]]}}
            )

    await page.route(re.compile(r"/flags/beta\?dry_run=true$"), dry_run)
    await sign_in(page, live_server, tokens.mint("writer", tree["acme"]))
    await open_org(page, live_server, tree["acme"])
    await page.get_by_role("button", name="Change beta").click()
    await page.get_by_label("Kind of change").select_option("rollout")
    await page.get_by_label("Percent of units").fill("25")
    await page.get_by_label("Unit depth below this org").fill("1")
    await expect(page.get_by_label("New value (boolean)")).to_have_value("true")
    await page.get_by_role("button", name="Preview setting this value").click()
    await expect(page.locator("#preview-text")).to_have_text(
        re.compile(
            rf"^Roll out beta on {tree['acme']}: rollout of true to 25% of units 1 level below: "
            rf"this changes \d+ orgs?\.$"
        )
    )
    assert sent == [{"rollout": ROLLOUT}]
    if not served:
        await expect(page.locator("#preview-text")).to_contain_text("this changes 2 orgs.")
    unwritten = await api.get(f"/v1/orgs/{tree['de']}/flags/beta", headers=tokens.reader())
    assert unwritten.json()["reason"] == "default"
    await page.get_by_role("button", name="Back").click()
    await expect(page.get_by_label("Percent of units")).to_be_visible()


# --------------------------------------------------------------------------- accessibility and speed


async def axe(page: Page) -> list[dict]:
    if not AXE.exists():
        pytest.fail(f"{AXE} missing: run `make axe` (fetches axe-core from the npm registry)")
    # Injected by the test harness (the page's CSP governs the page's own scripts, not this).
    await page.evaluate(AXE.read_text())
    result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [node["target"] for node in v["nodes"]][:5]}
        for v in result["violations"]
    ]


async def test_no_serious_accessibility_violations(page, live_server, tokens, tree, capsys):
    await page.goto(f"{live_server}/ui")
    screens = {"sign-in": await axe(page)}
    await sign_in(page, live_server, tokens.mint("admin", tree["acme"]))
    await open_org(page, live_server, tree["eu"])
    await expect(page.locator("#audit tbody tr").first).to_be_visible()
    await page.get_by_role("button", name="Explain dark-mode").click()
    await expect(page.locator("#explain")).to_be_visible()
    screens["org"] = await axe(page)
    await page.get_by_role("button", name="Change theme").click()
    await page.get_by_role("button", name="Preview setting this value").click()
    await expect(page.locator("#preview")).to_be_visible()
    screens["preview"] = await axe(page)
    serious = {
        screen: [v for v in found if v["impact"] in ("serious", "critical")] for screen, found in screens.items()
    }
    assert serious == {screen: [] for screen in screens}, json.dumps(serious, indent=1)
    report = {screen: [f"{v['id']} ({v['impact']})" for v in found] for screen, found in screens.items()}
    with capsys.disabled():
        print(f"\naxe-core findings below serious: {report}")


# --------------------------------------------------------------------------- /docs


async def test_docs_render_their_operations_with_the_network_cut_off(page, offline, live_server, tokens):
    response = await page.goto(f"{live_server}/docs")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    operations = page.locator(".opblock-summary-path")
    await expect(operations.first).to_be_visible()
    paths = set(await operations.all_text_contents())
    shown = {path.replace("\u200b", "") for path in paths}  # Swagger UI breaks long paths with zero-width spaces
    assert {"/v1/orgs/{org}/children", "/v1/orgs/{org}/flags/{flag}", "/v1/audit"} <= shown
    await shot(page, "docs")

    # Authorize with a bearer token, then try an operation: the token goes in the header.
    await page.locator(".auth-wrapper button.authorize").click()
    dialog = page.locator(".dialog-ux")
    await dialog.locator(".auth-container input").first.fill(tokens.mint("reader"))
    await dialog.locator(".auth-btn-wrapper button.authorize").first.click()
    await dialog.locator("button.btn-done").first.click()
    flags_op = page.locator("#operations-default-get_v1_flags")
    await flags_op.locator(".opblock-summary").click()
    await flags_op.get_by_role("button", name="Try it out").click()
    async with page.expect_request(re.compile(r"/v1/flags$")) as caught:
        await flags_op.get_by_role("button", name="Execute").click()
    request = await caught.value
    assert (await request.all_headers())["authorization"].startswith("Bearer ")
    await expect(flags_op.locator(".live-responses-table tbody .response-col_status").first).to_contain_text("200")
    assert offline.refused == []
