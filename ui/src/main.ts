// The Fluxgate console: dashboard, providers and keys, routes with a live explain preview,
// requests and usage, client setup, settings. Hash navigation (#dashboard, #keys, ...);
// live key health from /admin/api/events (SSE, read with fetch so the session header goes
// along).

import type { Event, EventName } from "./generated/api";
import "./style.css";
import { ApiError, get } from "./api";
import { clear, h } from "./dom";
import { countdown, KeyHealth, percent, rates } from "./format";
import { RequestRow, state, main, live, showError, refresh, onRender } from "./shell";
import { dashboard } from "./views/dashboard";
import { providersView } from "./views/keys";
import { routesView } from "./views/routes";
import { requestsView } from "./views/usage";
import { setupView, settingsView } from "./views/setup";
import { InitState, welcomeView } from "./views/welcome";
import { adoptFromLocation, sessionHeaders } from "./session";
import { SseEvent, stream } from "./sse";

adoptFromLocation();

const VIEWS: [string, string][] = [
  ["dashboard", "Dashboard"],
  ["keys", "Providers & keys"],
  ["routes", "Routes"],
  ["requests", "Requests & usage"],
  ["setup", "Client setup"],
  ["settings", "Settings"],
];

function current(): string {
  const v = location.hash.replace(/^#/, "");
  return VIEWS.some(([id]) => id === v) ? v : "dashboard";
}

function renderNav(): void {
  const nav = document.getElementById("nav") as HTMLElement;
  const cur = current();
  clear(
    nav,
    VIEWS.map(([id, title]) =>
      h("a", { href: `#${id}`, "aria-current": id === cur ? "page" : undefined }, title),
    ),
  );
}

let rendering = 0;
/** The welcome page is on screen (see render). */
let welcoming = false;

async function render(): Promise<void> {
  renderNav();
  const view = current();
  const mine = ++rendering;
  // Keep focus and typed text in forms: only re-render the dashboard on live events.
  try {
    let nodes: HTMLElement[];
    switch (view) {
      case "keys":
        nodes = providersView();
        break;
      case "routes":
        nodes = routesView();
        break;
      case "requests":
        nodes = await requestsView();
        break;
      case "setup":
        nodes = await setupView();
        break;
      case "settings":
        nodes = settingsView();
        break;
      default: {
        // The first run (no config file, no key): the welcome page instead of an empty
        // dashboard. It stays, whatever live events arrive, until the user leaves it.
        if (welcoming) return;
        const c = state.conf;
        const noKeys = c !== null && c.from_environment && c.providers.every((p) => p.keys.length === 0);
        const init = noKeys ? await get<InitState>("init") : null;
        welcoming = init?.welcome === true;
        nodes = init?.welcome ? await welcomeView(init) : dashboard();
      }
    }
    if (mine === rendering) clear(main, nodes);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      clear(
        main,
        h(
          "section",
          { class: "empty" },
          h("h1", {}, "Sign in"),
          h(
            "p",
            {},
            "Open the console from the Fluxgate tray menu, or run ",
            h("code", {}, "fluxgate console"),
            " for a one-time login link.",
          ),
        ),
      );
    } else showError(e);
  }
}

function tick(): void {
  const now = Date.now();
  for (const el of Array.from(document.querySelectorAll<HTMLElement>("[data-until]"))) {
    const until = Number(el.dataset.until);
    el.textContent = `${el.dataset.label ?? ""} ${countdown(until, now)}`.trim();
  }
}

/** The names the event stream sends: the router's events (generated from Rust) and the snapshot. */
type LiveEventName = EventName | "snapshot";

function onLiveEvent(e: SseEvent): void {
  switch (e.event as LiveEventName) {
    case "snapshot": {
      const d = JSON.parse(e.data) as { keys: KeyHealth[] };
      state.keys = d.keys;
      live.textContent = "live";
      live.className = "live on";
      if (current() === "dashboard") void render();
      break;
    }
    case "key_state_changed":
    case "proxy_state_changed":
    case "config_reloaded":
    case "routing_paused":
      if (current() === "dashboard" || current() === "keys") {
        refresh().catch(showError);
      } else {
        get<{ keys: KeyHealth[] }>("keys")
          .then((k) => (state.keys = k.keys))
          .catch(() => undefined);
      }
      break;
    case "config_invalid": {
      const d = JSON.parse(e.data) as Extract<Event, { type: "config_invalid" }>;
      showError(`The config file was edited but is invalid; the running config stays: ${d.error}`);
      break;
    }
  }
}

/** Follows the event stream, reconnecting (1 s, growing to 10 s) whenever it ends. */
async function connect(): Promise<void> {
  let wait = 1000;
  for (;;) {
    const status = await stream("/admin/api/events", sessionHeaders(), (e) => {
      wait = 1000;
      onLiveEvent(e);
    });
    live.textContent = status === 401 ? "signed out" : "reconnecting…";
    live.className = "live off";
    if (status === 401) {
      void render();
      return;
    }
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 2, 10_000);
  }
}

async function pollRates(): Promise<void> {
  try {
    const r = await get<{ requests: RequestRow[] }>("requests?limit=1000");
    state.requests = r.requests;
    if (current() === "dashboard") {
      const x = rates(state.requests, Date.now());
      const rate = document.getElementById("req-rate");
      const err = document.getElementById("err-rate");
      if (rate) rate.textContent = x.perMin.toFixed(1);
      if (err) err.textContent = percent(Math.round(x.errorRate * x.n), x.n);
    }
  } catch {
    /* shown by the next refresh */
  }
}

document.addEventListener("fluxgate:welcome-done", () => {
  welcoming = false;
  void render();
});

window.addEventListener("hashchange", () => {
  welcoming = false;
  void render();
  main.focus();
});

onRender(render);

async function start(): Promise<void> {
  try {
    await refresh();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      void render();
      return;
    }
    showError(e);
    return;
  }
  void connect();
  void pollRates();
  setInterval(tick, 1000);
  setInterval(pollRates, 10_000);
}

void start();
