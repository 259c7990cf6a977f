// The public API with the signed-in user's token, and nothing else: roles, scopes, limits and the
// audit log apply to the console exactly as to any client. The token travels only in the
// Authorization header (never in a URL, so it reaches no log or history).

const KEY = "graphflags.token";

let token = sessionStorage.getItem(KEY);

export function signedIn() { return token !== null; }

export function signIn(value) { token = value.trim(); sessionStorage.setItem(KEY, token); }

export function signOut() { token = null; sessionStorage.removeItem(KEY); }

// What the token says about itself, for display only: the service verifies it on every call.
export function claims() {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload.padEnd(payload.length + (4 - payload.length % 4) % 4, "=")));
  } catch {
    return {};
  }
}

// A failed call, explained for a person: problem documents (RFC 9457) become readable sentences.
export class ApiError extends Error {
  constructor(status, problem) {
    super(describe(status, problem));
    this.status = status;
    this.problem = problem;
    this.slug = (problem.type || "").split("/").pop();
  }
}

function describe(status, problem) {
  const detail = problem.detail ? `: ${problem.detail}` : "";
  if (status === 401) return "Your token was not accepted (expired, or not for this service). Sign in again.";
  if (status === 403) return `Not allowed${detail}.`;
  if (status === 429) return `Too many requests; try again in ${problem.retryAfter || "a few"} seconds.`;
  if (status === 503) return "The service is busy or its database is unreachable; try again shortly.";
  return `${problem.title || `Error ${status}`}${detail}`;
}

async function failure(response) {
  let problem = {};
  try { problem = await response.json(); } catch { /* not a problem document */ }
  problem.retryAfter = response.headers.get("Retry-After");
  return new ApiError(response.status, problem);
}

function headers(extra = {}) {
  return { Authorization: `Bearer ${token}`, Accept: "application/json", ...extra };
}

export async function call(method, path, { query, body } = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  let response;
  try {
    response = await fetch(url, {
      method,
      headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }),
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, { title: "The service did not answer", detail: "check the connection and retry" });
  }
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : response.json();
}

export const get = (path, query) => call("GET", path, { query });

const enc = encodeURIComponent;
export const paths = {
  org: (org) => `/v1/orgs/${enc(org)}`,
  children: (org) => `/v1/orgs/${enc(org)}/children`,
  flags: (org) => `/v1/orgs/${enc(org)}/flags`,
  flag: (org, flag) => `/v1/orgs/${enc(org)}/flags/${enc(flag)}`,
  explain: (org, flag) => `/v1/orgs/${enc(org)}/flags/${enc(flag)}/explain`,
};

// The public contract, to learn which optional features (dry run) this server has.
export async function contract() {
  const response = await fetch("/openapi.json", { cache: "no-store" });
  return response.ok ? response.json() : {};
}

// The change feed as Server-Sent Events over fetch(): EventSource cannot send the Authorization
// header, and a token in the URL would end up in access logs. Calls onEvent(event) per change;
// reconnects with Last-Event-ID until `signal` aborts or the service refuses (401/403/429).
export async function follow(after, { signal, onEvent, onState }) {
  let last = after;
  while (!signal.aborted) {
    try {
      const response = await fetch(`/v1/changes?after=${last}`, {
        headers: headers({ Accept: "text/event-stream", "Last-Event-ID": String(last) }), signal, cache: "no-store",
      });
      if (!response.ok) {
        const error = await failure(response);
        onState(`Stopped: ${error.message}`, true);
        return;
      }
      onState("Connected: changes appear here as they happen.");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = parseBlock(block);
          if (event.type === "expired") { onState("The feed moved past this position; reload the page.", true); return; }
          if (event.data !== undefined) {
            if (event.id !== undefined) last = Number(event.id);
            onEvent(JSON.parse(event.data));
          }
        }
      }
    } catch (error) {
      if (signal.aborted) return;
    }
    // The stream ended (token expiry, restart): resume after a pause from the last seq seen.
    onState("Reconnecting…");
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

function parseBlock(block) {
  const event = { type: "message" };
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "data") data.push(value);
    else if (field === "id") event.id = value;
    else if (field === "event") event.type = value;
  }
  if (data.length) event.data = data.join("\n");
  return event;
}
