/* Roost's game SDK for the web: events in the game-telemetry dialect, batched.
 * Called as the game document shows (import { OwlsignalClient } from this module):
 *   OwlsignalClient.Initialize({apiKey, buildVersion, endpointUrl?});  // the full events URL
 *   TrackProgression(name, {value, dim01..dim03, data}); TrackDesign(name, {dim01});
 *   TrackResource("Source:Coins", {value: 50}); TrackError(name, {data: {stack}});
 *   IdentifyUser(id); SetOptOut(true).
 * The same object is this module's default (RoostGame; /js/roost-game.js sets window.RoostGame
 * and window.OwlsignalClient), with camelCase aliases (initialize, trackProgression, …).
 * A session starts with the first event and ends on pagehide (sent with keepalive). Batches go
 * every 30 s or 30 events; 5xx, 429 and network errors are retried with exponential backoff,
 * other 4xx batches dropped. SetOptOut(true) sends what was tracked before and drops the rest.
 * Nothing here ever throws into the game. */
const BATCH_EVENTS = 30;
const INTERVAL_MS = 30000;
const MAX_REQUEST = 100;
const MAX_BACKOFF_MS = 60000;
const here = typeof document !== "undefined" && document.currentScript ? document.currentScript.src : import.meta.url;

const state = {
  ready: false, key: "", build: "", endpoint: "", player: randomHex(), session: null,
  queue: [], sending: false, failures: 0, retry: null, timer: null, optOut: false,
};

function randomHex() {
  const bytes = new Uint8Array(16);
  (globalThis.crypto || {}).getRandomValues ? crypto.getRandomValues(bytes) : bytes.forEach((_, i) => { bytes[i] = Math.random() * 256; });
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function uuid() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  const h = randomHex();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function hash128(text) {
  // cyrb128: a fast, well-spread 128-bit string hash; a player id is shown only as this.
  let h1 = 1779033703, h2 = 3144134277, h3 = 1013904242, h4 = 2773480762;
  for (let i = 0, k; i < text.length; i++) {
    k = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067); h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213); h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067); h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213); h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  return [h1 ^ h2 ^ h3 ^ h4, h2 ^ h1, h3 ^ h1, h4 ^ h1].map((n) => (n >>> 0).toString(16).padStart(8, "0")).join("");
}

function safe(fn) {
  return function () {
    try { return fn.apply(this, arguments); } catch (e) { return undefined; }
  };
}

function body(events) {
  return JSON.stringify({ events, writeKey: state.key });
}

function push(type, name, opts) {
  if (!state.ready || state.optOut) return;
  if (!state.session) {
    state.session = uuid();
    if (!(type === "session" && name === "Session:Start")) push("session", "Session:Start");
  }
  const event = {
    build_version: state.build, session_id: state.session, player_hash: state.player,
    ts: new Date().toISOString(), type, name: String(name), event_id: uuid(),
  };
  opts = opts || {};
  if (typeof opts.value === "number" && isFinite(opts.value)) event.value = opts.value;
  for (const dim of ["dim01", "dim02", "dim03"]) if (opts[dim] != null) event[dim] = String(opts[dim]);
  if (opts.data && typeof opts.data === "object") event.data = opts.data;
  state.queue.push(event);
  if (state.queue.length >= BATCH_EVENTS) flush();
}

function schedule(delay) {
  if (state.retry) return;
  state.retry = setTimeout(() => { state.retry = null; flush(); }, delay);
}

async function flush() {
  if (state.sending || !state.queue.length || !state.ready) return;
  if (state.retry) { clearTimeout(state.retry); state.retry = null; }
  state.sending = true;
  const batch = state.queue.splice(0, MAX_REQUEST);
  let again = false;
  try {
    const response = await fetch(state.endpoint, {
      method: "POST", body: body(batch), credentials: "omit",
      headers: { "Content-Type": "text/plain" },
    });
    if (response.status === 429 || response.status >= 500) again = true;
    else { state.failures = 0; }  // 2xx stored; another 4xx will never pass: dropped
  } catch (e) {
    again = true;  // the network: try again
  }
  state.sending = false;
  if (again) {
    if (!state.optOut) state.queue.unshift(...batch);
    state.failures += 1;
    const ceiling = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (state.failures - 1));
    schedule(ceiling / 2 + Math.random() * ceiling / 2);
  } else if (state.queue.length) {
    flush();
  }
}

function leave() {
  if (!state.ready || state.optOut) return;
  if (state.session) push("session", "Session:End");
  state.session = null;
  while (state.queue.length) {
    const data = body(state.queue.splice(0, MAX_REQUEST));
    const url = state.endpoint;
    const beacon = navigator.sendBeacon && navigator.sendBeacon(url, new Blob([data], { type: "text/plain" }));
    if (!beacon) fetch(url, { method: "POST", body: data, keepalive: true, credentials: "omit", headers: { "Content-Type": "text/plain" } }).catch(() => {});
  }
}

function endpoint(given) {
  // The full events URL, as the document has it; a bare origin (Roost's older form) gets the path.
  const url = new URL(given || "/api/v1/events", here);
  if (url.pathname === "/" && !url.search) url.pathname = "/api/v1/events";
  return url.href;
}

function options(opts) {
  // A number where an options object goes is its value (trackResource("Source:Gold", 5)).
  return typeof opts === "number" ? { value: opts } : opts;
}

const RoostGame = {
  Initialize: safe((settings) => {
    const o = settings || {};
    state.key = String(o.apiKey || "");
    state.build = String(o.buildVersion || "");
    state.endpoint = endpoint(o.endpointUrl);
    state.ready = Boolean(state.key && state.build);
    if (!state.timer) state.timer = setInterval(safe(flush), INTERVAL_MS);
    addEventListener("pagehide", safe(leave));
  }),
  TrackProgression: safe((name, opts) => push("progression", name, options(opts))),
  TrackDesign: safe((name, opts) => push("design", name, options(opts))),
  TrackResource: safe((name, opts, more) => {
    push("resource", name, typeof opts === "number" ? { ...(more || {}), value: opts } : opts);
  }),
  TrackError: safe((name, opts) => {
    const o = { ...(options(opts) || {}) };
    if (o.signature) o.data = { ...(o.data || {}), signature: String(o.signature) };
    push("error", name, o);
  }),
  IdentifyUser: safe((id) => {
    const text = String(id);
    state.player = /^[A-Za-z0-9_-]{32,64}$/.test(text) ? text : hash128(text);
  }),
  SetOptOut: safe((value) => {
    if (Boolean(value) && !state.optOut) flush();  // what was tracked before opting out goes
    state.optOut = Boolean(value);
  }),
  Flush: safe(() => flush()),
};
for (const name of Object.keys(RoostGame)) {
  RoostGame[name[0].toLowerCase() + name.slice(1)] = RoostGame[name];  // camelCase aliases
}

export { RoostGame as default, RoostGame, RoostGame as OwlsignalClient };
