// The console: sign in, find and walk orgs, read effective values and why, change them (now, at a time,
// or as a rollout) with a preview, see and cancel scheduled changes, read the audit log and follow the
// change feed. Plain DOM, no framework: the page must load fast
// offline, and every text is set with textContent so no API answer is ever parsed as HTML.
import * as api from "/ui/api.js";

const $ = (id) => document.getElementById(id);
const state = { org: null, chain: [], flags: {}, catalog: {}, children: null, audit: null, change: null,
                dryRun: false, feed: null, admin: false, writer: false };

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

const orgHref = (org) => `#org=${encodeURIComponent(org)}`;
const orgLink = (org, label = org) => el("a", { href: orgHref(org), text: label });
const show = (node, visible = true) => { node.hidden = !visible; };
const render = (value) => (value === null || value === undefined ? "—" : JSON.stringify(value));

function say(message) { $("status").textContent = message; }

function fail(error) {
  if (error instanceof api.ApiError && error.status === 401) { signOut(error.message); return; }
  $("alert").textContent = error.message;
  show($("alert"));
}

function clearAlert() { $("alert").textContent = ""; show($("alert"), false); }

// ----------------------------------------------------------------------------- sign in and out

async function enter() {
  const claims = api.claims();
  const roles = [].concat(claims.roles || []);
  state.admin = roles.includes("admin");
  state.writer = state.admin || roles.includes("writer");
  const orgs = [].concat(claims.orgs || []);
  $("who").textContent = `${claims.sub || "?"} · ${roles.join(", ") || "no role"} · ${orgs.includes("*") ? "all orgs" : orgs.join(", ")}`;
  show($("who")); show($("sign-out")); show($("sign-in"), false); show($("workspace"));
  const roots = $("root-list");
  roots.replaceChildren(...orgs.filter((org) => org !== "*").map((org) => el("li", {}, orgLink(org))));
  show($("roots"), roots.children.length > 0);
  try {
    const [catalog, contract] = await Promise.all([api.get("/v1/flags"), api.contract()]);
    state.catalog = Object.fromEntries(catalog.flags.map((flag) => [flag.name, flag]));
    const sets = [...new Set(catalog.flags.map((flag) => flag.set || "default"))].sort();
    $("flag-set").replaceChildren(el("option", { value: "", text: "All sets" }),
                                  ...sets.map((name) => el("option", { value: name, text: name })));
    // Dry run is optional: only a server that documents it is asked for a preview (an older one
    // would ignore the parameter and write at once).
    const put = contract.paths?.["/v1/orgs/{org}/flags/{flag}"]?.put;
    state.dryRun = (put?.parameters || []).some((param) => param.name === "dry_run");
  } catch (error) {
    fail(error);
    return;
  }
  startFeed();
  await route();
}

function signOut(message = "Signed out.") {
  api.signOut();
  state.feed?.abort();
  state.feed = null;
  show($("workspace"), false); show($("who"), false); show($("sign-out"), false); show($("sign-in"));
  clearAlert();
  say(message);
  $("token").value = "";
  $("token").focus();
}

$("sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  api.signIn($("token").value);
  $("token").value = "";
  clearAlert();
  say("Signed in.");
  enter();
});
$("sign-out").addEventListener("click", () => signOut());

// ----------------------------------------------------------------------------- finding orgs

$("find-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearAlert();
  try {
    const answer = await api.get("/v1/orgs", { prefix: $("prefix").value.trim(), limit: 20 });
    $("found").replaceChildren(...answer.orgs.map((org) => el("li", {}, orgLink(org))));
    const note = $("found-note");
    note.textContent = answer.orgs.length === 0 ? "No organization you may see starts with that."
      : answer.truncated ? "There may be more: type a longer prefix." : "";
    show(note, note.textContent !== "");
    say(`${answer.orgs.length} organization(s) found.`);
  } catch (error) {
    fail(error);
  }
});

// ----------------------------------------------------------------------------- the org in view

async function route() {
  const match = location.hash.match(/^#org=(.+)$/);
  if (!api.signedIn()) return;
  if (!match) { show($("org-view"), false); return; }
  await openOrg(decodeURIComponent(match[1]));
}

window.addEventListener("hashchange", route);

async function openOrg(org) {
  clearAlert();
  closePanels();
  let view;
  try {
    view = await api.get(api.paths.org(org));
  } catch (error) {
    show($("org-view"), false);
    fail(error);
    return;
  }
  state.org = org;
  state.chain = view.ancestors;
  const crumbs = [...view.ancestors].reverse().map((id) => el("li", {}, orgLink(id)));
  crumbs.push(el("li", {}, el("span", { "aria-current": "page", text: org })));
  $("crumbs").replaceChildren(...crumbs);
  $("org-title").textContent = org;
  $("org-facts").textContent = `${view.ancestors.length ? `Parent ${view.parent}` : "A root"} · ${view.children} child(ren)`;
  show($("org-view"));
  $("org-title").focus();
  await Promise.all([loadChildren(true), loadFlags(), loadSchedules(), loadAudit(true)]);
  say(`Showing ${org}.`);
}

async function loadChildren(first) {
  if (first) { state.children = null; $("children").replaceChildren(); }
  try {
    const page = await api.get(api.paths.children(state.org), { limit: 50, cursor: state.children });
    $("children").append(...page.children.map((child) =>
      el("li", {}, orgLink(child.id), el("span", { class: "count", text: ` ${child.children} below` }))));
    if (first && page.children.length === 0) $("children").append(el("li", { class: "note", text: "No children." }));
    state.children = page.next;
    show($("children-more"), page.next !== null);
  } catch (error) {
    fail(error);
  }
}
$("children-more").addEventListener("click", () => loadChildren(false));

async function loadFlags() {
  const body = $("flags").tBodies[0];
  try {
    const answer = await api.get(api.paths.flags(state.org), { set: $("flag-set").value });
    state.flags = answer.flags;
    body.replaceChildren(...Object.keys(answer.flags).sort().map((name) => {
      const flag = answer.flags[name];
      const actions = el("td", { class: "actions" },
        el("button", { type: "button", "aria-label": `Explain ${name}`, text: "Explain", onclick: () => explain(name) }));
      if (state.writer) {
        actions.append(el("button", { type: "button", "aria-label": `Change ${name}`, text: "Change",
                                      onclick: () => openChange(name) }));
      }
      return el("tr", { "data-flag": name },
        el("th", { scope: "row", text: name }),
        el("td", { class: "value", text: render(flag.value) }),
        el("td", {}, ...reasonCell(flag)),
        el("td", {}, flag.source_org ? orgLink(flag.source_org) : "—"),
        actions);
    }));
  } catch (error) {
    body.replaceChildren();
    fail(error);
  }
}
$("flag-set").addEventListener("change", loadFlags);

// The reason as a badge. A rollout (reason `split`, docs/api.md "Rollouts along the tree") names the
// unit through which this org is in it, where the answer carries it.
function reasonCell(flag) {
  const badge = el("span", { class: `reason ${flag.reason}`, text: flag.reason });
  if (flag.reason !== "split") return [badge];
  const unit = flag.unit ?? flag.metadata?.unit;
  return [badge, el("span", { class: "note", text: unit ? ` rollout, unit ${unit}` : " rollout" })];
}

function closePanels() {
  show($("explain"), false);
  show($("change"), false);
  state.change = null;
}

async function explain(flag) {
  clearAlert();
  closePanels();
  try {
    const answer = await api.get(api.paths.explain(state.org, flag));
    $("explain-title").textContent = `Why ${answer.org} gets ${flag} = ${render(answer.value)}`;
    $("explain-summary").textContent = summary(answer);
    $("explain-chain").replaceChildren(...answer.chain.map((entry) => {
      const link = { ...entry, rollout: rolloutOf(entry) };
      const decisive = link.org === answer.source_org;
      return el("li", { class: decisive ? "decisive" : "" }, orgLink(link.org),
        el("span", { text: link.rollout ? ` = ${describeRollout(link.rollout)}`
          : link.value === null ? " — not set" : ` = ${render(link.value)}` }),
        // A sealed value marks the sealing org; the values set below it are kept but inactive.
        link.sealed ? el("span", { class: "tag", text: " sealed" }) : "",
        link.active === false && (link.value !== null || link.rollout) ? el("span", { class: "note", text: " (inactive)" }) : "",
        decisive ? el("strong", { text: " ← wins" }) : "");
    }));
    show($("explain"));
    $("explain-title").focus();
  } catch (error) {
    fail(error);
  }
}

// A chain entry's rollout: the server shows a rollout as the entry's value in its public shape,
// `{"rollout": {"percent", "unit_depth", "value"}}` (docs/api.md, "Rollouts along the tree").
function rolloutOf(link) {
  if (!link) return undefined;
  if (link.rollout) return link.rollout;
  const value = link.value;
  const isRollout = value && typeof value === "object" && !Array.isArray(value)
    && Object.keys(value).length === 1 && value.rollout && typeof value.rollout === "object";
  return isRollout ? value.rollout : undefined;
}

function describeRollout(rollout) {
  const depth = rollout.unit_depth ?? 1;
  return `rollout of ${render(rollout.value)} to ${rollout.percent}% of units ${depth} level${depth === 1 ? "" : "s"} below`;
}

// Why, in one sentence. For a rollout: its percent, and the unit (the ancestor at the rollout's unit
// depth below the source org) through which this org is in it, from the answer or else from the chain.
function summary(answer) {
  if (answer.reason === "default") return "Nothing is set on this org or any ancestor: the catalog default applies.";
  if (answer.reason === "sealed") return `${answer.source_org} sealed this value: nothing set below it applies.`;
  if (answer.reason !== "split") return `The nearest value is set on ${answer.source_org} (${answer.reason}).`;
  const at = answer.chain.findIndex((link) => link.org === answer.source_org);
  const rollout = rolloutOf(answer.chain[at]);
  const unit = answer.unit ?? answer.metadata?.unit ?? (rollout ? answer.chain[at - (rollout.unit_depth ?? 1)]?.org : undefined);
  return `A rollout set on ${answer.source_org}${rollout ? ` (${describeRollout(rollout)})` : ""} includes this org`
    + `${unit ? ` through its unit ${unit}` : ""}.`;
}

// ----------------------------------------------------------------------------- changing a value

function valueInput(definition, current) {
  const id = "change-value";
  const label = el("label", { for: id, text: `New value (${definition.type})` });
  let input;
  if (definition.type === "boolean") {
    input = el("select", { id }, el("option", { value: "true", text: "true" }), el("option", { value: "false", text: "false" }));
    input.value = String(!current);
  } else if (definition.type === "string" && definition.allowed) {
    input = el("select", { id }, ...definition.allowed.map((option) => el("option", { value: option, text: option })));
    input.value = current;
  } else if (definition.type === "object") {
    input = el("textarea", { id, rows: "4", spellcheck: "false" });
    input.value = JSON.stringify(current ?? {});
  } else {
    input = el("input", { id, type: definition.type === "string" ? "text" : "number", spellcheck: "false" });
    if (definition.type === "integer") input.step = "1";
    if (definition.type === "number") input.step = "any";
    if (definition.min !== undefined) input.min = definition.min;
    if (definition.max !== undefined) input.max = definition.max;
    input.value = current ?? "";
  }
  return [label, input];
}

function readValue(definition) {
  const text = $("change-value").value;
  switch (definition.type) {
    case "boolean": return text === "true";
    case "integer": case "number": {
      if (text.trim() === "" || Number.isNaN(Number(text))) throw new Error("Enter a number.");
      return Number(text);
    }
    case "object":
      try { return JSON.parse(text); } catch { throw new Error("Enter a JSON object, e.g. {\"seats\": 5}."); }
    default: return text;
  }
}

function openChange(flag) {
  clearAlert();
  closePanels();
  const definition = state.catalog[flag] || { type: "string" };
  state.change = { flag, definition };
  $("change-title").textContent = `Change ${flag} on ${state.org}`;
  $("change-input").replaceChildren(...valueInput(definition, state.flags[flag]?.value));
  $("change-kind").value = "value";
  show($("rollout-fields"), false);
  $("change-at").value = "";
  show($("change-form"));
  show($("preview"), false);
  show($("change"));
  $("change-value").focus();
}

$("change-cancel").addEventListener("click", closePanels);
$("change-kind").addEventListener("change", () => show($("rollout-fields"), $("change-kind").value === "rollout"));

// The time picked in the browser's local time, as the RFC 3339 UTC time the API takes; none: now.
function readAt() {
  const text = $("change-at").value;
  if (!text) return undefined;
  const moment = new Date(text);
  if (Number.isNaN(moment.getTime())) throw new Error("Enter a date and time, or leave it empty to apply now.");
  return moment.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function readRollout(value) {
  const percent = Number($("rollout-percent").value);
  const depth = Number($("rollout-depth").value);
  if ($("rollout-percent").value.trim() === "" || !(percent >= 0 && percent <= 100)) throw new Error("Enter a percent from 0 to 100.");
  if (!Number.isInteger(depth) || depth < 1) throw new Error("Enter a unit depth of 1 or more.");
  return { percent, value, unit_depth: depth };
}

// The request a change makes, for its preview (dry run) and its confirmation alike.
function request(change) {
  if (change.method === "DELETE") return { query: { at: change.at } };
  const body = change.rollout ? { rollout: change.rollout } : { value: change.value };
  if (change.at) body.at = change.at;
  return { body };
}

function describeChange(flag, change) {
  const what = change.method === "DELETE" ? `Clear ${flag} on ${state.org} (it inherits again)`
    : change.rollout ? `Roll out ${flag} on ${state.org}: ${describeRollout(change.rollout)}`
      : `Set ${flag} to ${render(change.value)} on ${state.org}`;
  return change.at ? `${what}, at ${new Date(change.at).toLocaleString()}` : what;
}
$("preview-back").addEventListener("click", () => { show($("preview"), false); show($("change-form")); $("change-value").focus(); });

$("change-form").addEventListener("submit", (event) => {
  event.preventDefault();
  try {
    const value = readValue(state.change.definition);
    const rollout = $("change-kind").value === "rollout" ? readRollout(value) : undefined;
    preview({ method: "PUT", value, rollout, at: readAt() });
  } catch (error) {
    fail(error);
  }
});
$("preview-clear").addEventListener("click", () => {
  try {
    preview({ method: "DELETE", at: readAt() });
  } catch (error) {
    fail(error);
  }
});

async function preview(change) {
  clearAlert();
  const { flag } = state.change;
  state.change.pending = change;
  const what = describeChange(flag, change);
  let text = `${what}?`;
  let sample = [];
  if (state.dryRun) {
    try {
      const { query, body } = request(change);
      const answer = await api.call(change.method, api.paths.flag(state.org, flag), {
        query: { ...query, dry_run: "true" }, body });
      if (answer && answer.dry_run) {
        const { orgs, exact, sample: some } = answer.affected;
        // A scheduled change is counted against the tree as it is now.
        text = `${what}: this changes ${exact ? "" : "at least "}${orgs} org${orgs === 1 ? "" : "s"}`
          + `${change.at ? " as the tree is now" : ""}.`;
        sample = some || [];
      }
    } catch (error) {
      // The dry run makes every check of the real request: its refusal is the answer.
      fail(error);
      return;
    }
  } else {
    text += " This server cannot preview how many orgs it changes.";
  }
  $("preview-text").textContent = text;
  $("preview-sample").replaceChildren(...sample.map((org) => el("li", {}, orgLink(org))));
  show($("change-form"), false);
  show($("preview"));
  $("confirm").focus();
}

$("confirm").addEventListener("click", async () => {
  const { flag, pending } = state.change;
  let answer;
  try {
    answer = await api.call(pending.method, api.paths.flag(state.org, flag), request(pending));
  } catch (error) {
    fail(error);
    return;
  }
  closePanels();
  if (answer?.schedule) say(`Scheduled: ${describeChange(flag, pending)}.`);
  else say(pending.method === "PUT" ? `${flag} set on ${state.org}.` : `${flag} cleared on ${state.org}.`);
  await Promise.all([loadFlags(), loadSchedules(), loadAudit(true)]);
  document.querySelector(`tr[data-flag="${CSS.escape(flag)}"] button`)?.focus();
});

// ----------------------------------------------------------------------------- scheduled changes

// The pending schedules that touch the org in view: on it or below (one subtree query), and on each
// of its ancestors (their changes reach it too). The service keeps each list to the token's scope.
async function loadSchedules() {
  const body = $("schedule-list").tBodies[0];
  const note = $("schedules-note");
  body.replaceChildren();
  if (!state.writer) {
    note.textContent = "Scheduled changes need the writer role.";
    show(note); show($("schedule-list"), false);
    return;
  }
  let found;
  try {
    const lists = await Promise.all([
      api.get("/v1/schedules", { org: state.org, subtree: "true" }),
      ...state.chain.map((ancestor) => api.get("/v1/schedules", { org: ancestor }))]);
    found = lists.flatMap((list) => list.schedules);
  } catch (error) {
    note.textContent = error.message;
    show(note); show($("schedule-list"), false);
    return;
  }
  found.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.schedule.localeCompare(b.schedule)));
  body.append(...found.map(scheduleRow));
  note.textContent = found.length === 0 ? "No pending scheduled changes." : "";
  show(note, found.length === 0);
  show($("schedule-list"), found.length > 0);
}

function scheduleRow(schedule) {
  const change = schedule.value === null ? "clear" : `set to ${render(schedule.value)}${schedule.sealed ? ", sealed" : ""}`;
  return el("tr", { "data-schedule": schedule.schedule },
    el("td", {}, el("time", { datetime: schedule.at, text: new Date(schedule.at).toLocaleString() })),
    el("td", {}, orgLink(schedule.org)),
    el("td", { text: schedule.flag }),
    el("td", { class: "value", text: change }),
    el("td", { text: schedule.actor ?? "—" }),
    el("td", { class: "actions" }, el("button", {
      type: "button", class: "quiet", text: "Cancel",
      "aria-label": `Cancel the scheduled change of ${schedule.flag} on ${schedule.org}`,
      onclick: () => cancelSchedule(schedule) })));
}

async function cancelSchedule(schedule) {
  clearAlert();
  try {
    await api.call("DELETE", `/v1/schedules/${encodeURIComponent(schedule.schedule)}`);
  } catch (error) {
    fail(error);
    return;
  }
  say(`Cancelled the scheduled change of ${schedule.flag} on ${schedule.org}.`);
  await loadSchedules();
  $("schedules-title").focus();
}

// ----------------------------------------------------------------------------- audit and live feed

function auditRow(event) {
  return el("tr", {},
    el("td", { text: String(event.seq) }),
    el("td", {}, el("time", { datetime: event.at, text: new Date(event.at).toLocaleString() })),
    el("td", { text: event.actor }),
    el("td", { text: event.action }),
    el("td", {}, orgLink(event.org)),
    el("td", { text: event.flag ?? "—" }),
    el("td", { class: "value", text: render(event.old) }),
    el("td", { class: "value", text: render(event.new) }));
}

async function loadAudit(first) {
  const body = $("audit").tBodies[0];
  const note = $("audit-note");
  if (first) { state.audit = null; body.replaceChildren(); }
  if (!state.admin) {
    note.textContent = "The audit log needs the admin role.";
    show(note); show($("audit"), false); show($("audit-more"), false);
    return;
  }
  try {
    const page = await api.get("/v1/audit", { org: state.org, subtree: "true", limit: 20, cursor: state.audit });
    body.append(...page.events.map(auditRow));
    note.textContent = first && page.events.length === 0 ? "No events yet." : "";
    show(note, note.textContent !== "");
    show($("audit"));
    state.audit = page.next;
    show($("audit-more"), page.next !== null);
  } catch (error) {
    note.textContent = error.message;
    show(note);
  }
}
$("audit-more").addEventListener("click", () => loadAudit(false));

async function startFeed() {
  const feed = $("feed");
  const stateLine = $("feed-state");
  feed.replaceChildren();
  if (!state.admin) { stateLine.textContent = "The change feed needs the admin role."; return; }
  state.feed?.abort();
  const controller = new AbortController();
  state.feed = controller;
  let after = 0;
  try {
    // Start from the newest event: the feed shows what happens from now on.
    const newest = await api.get("/v1/audit", { limit: 1 });
    after = newest.events[0]?.seq ?? 0;
  } catch (error) {
    stateLine.textContent = error.message;
    return;
  }
  api.follow(after, {
    signal: controller.signal,
    onState: (text) => { stateLine.textContent = text; },
    onEvent: (event) => {
      const line = `${event.action} ${event.org}${event.flag ? ` ${event.flag}` : ""}: ${render(event.old)} → ${render(event.new)} by ${event.actor}`;
      feed.prepend(el("li", {}, el("time", { datetime: event.at, text: new Date(event.at).toLocaleTimeString() }),
                      " ", el("span", { text: line })));
      while (feed.children.length > 50) feed.lastChild.remove();
    },
  });
}

// ----------------------------------------------------------------------------- start

if (api.signedIn()) enter();
else $("token").focus();
