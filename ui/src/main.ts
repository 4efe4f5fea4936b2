// The Fluxgate console: dashboard, providers and keys, routes with a live explain preview,
// requests and usage, client setup, settings. Hash navigation (#dashboard, #keys, ...);
// live key health from /admin/api/events (SSE, read with fetch so the session header goes
// along).

import type { Event, EventName } from "./generated/api";
import "./style.css";
import { ApiError, get, session } from "./api";
import { clear, h } from "./dom";
import { countdown, KeyHealth, percent, rates } from "./format";
import {
  DashSeries,
  KeyHistory,
  KeyUsage,
  RequestRow,
  state,
  main,
  live,
  showError,
  refresh,
  onRender,
} from "./shell";
import type { BudgetPeriod } from "./format";
import { dashboard } from "./views/dashboard";
import { loadKeychain, providersView } from "./views/keys";
import { routesView } from "./views/routes";
import { inspectorView } from "./views/inspector";
import { usageView } from "./views/usage";
import { setupView, settingsView } from "./views/setup";
import { InitState, welcomeView } from "./views/welcome";
import { adoptFromLocation, sessionHeaders } from "./session";
import { SseEvent, stream } from "./sse";
import { Key, Lang, LANGS, lang, setLang, t } from "./i18n";

adoptFromLocation();
document.documentElement.lang = lang();

const VIEWS: [string, Key][] = [
  ["dashboard", "nav.dashboard"],
  ["keys", "nav.keys"],
  ["routes", "nav.routes"],
  ["requests", "nav.requests"],
  ["usage", "nav.usage"],
  ["setup", "nav.setup"],
  ["settings", "nav.settings"],
];

/** The view named by the address: `#requests?failed=1` is the requests view. */
function current(): string {
  const v = location.hash.replace(/^#/, "").split("?")[0];
  return VIEWS.some(([id]) => id === v) ? v : "dashboard";
}

function renderNav(): void {
  const nav = document.getElementById("nav") as HTMLElement;
  const cur = current();
  nav.setAttribute("aria-label", t("nav.sections"));
  clear(
    nav,
    VIEWS.map(([id, title]) =>
      h("a", { href: `#${id}`, "aria-current": id === cur ? "page" : undefined }, t(title)),
    ),
  );
  const skip = document.querySelector(".skip");
  if (skip) skip.textContent = t("nav.skip");
  renderLangSwitch();
}

/** The language picker in the header: switching redraws the whole console in place. */
function renderLangSwitch(): void {
  const slot = document.getElementById("lang-switch");
  if (!slot) return;
  const select: HTMLSelectElement = h(
    "select",
    {
      id: "lang",
      "aria-label": t("nav.language"),
      title: t("nav.language"),
      onchange: () => {
        setLang(select.value as Lang);
        if (live.dataset.state) live.textContent = t(live.dataset.state as Key);
        void render();
      },
    },
    LANGS.map((l) => h("option", { value: l.id, selected: l.id === lang(), lang: l.id }, l.name)),
  ) as HTMLSelectElement;
  clear(slot, select);
}

/** Shows the connection state in the header (kept as a key, so a language switch redraws it). */
function setLive(key: Key, on: boolean): void {
  live.dataset.state = key;
  live.textContent = t(key);
  live.className = on ? "live on" : "live off";
}

let rendering = 0;
/** The welcome page is on screen (see render). */
let welcoming = false;

async function render(): Promise<void> {
  renderNav();
  const view = current();
  // The first run's welcome page stays, whatever live events arrive, until the user leaves
  // it. Checked before this render counts: a render that draws nothing must not make the one
  // drawing the welcome page discard its work.
  if (view === "dashboard" && welcoming) return;
  const mine = ++rendering;
  if (session.signedOut) {
    // Every view, not only those that call the API as they draw.
    clear(main, signIn());
    return;
  }
  // Keep focus and typed text in forms: only re-render the dashboard on live events.
  try {
    let nodes: HTMLElement[];
    switch (view) {
      case "keys":
        await loadKeychain();
        nodes = providersView();
        break;
      case "routes":
        nodes = routesView();
        break;
      case "requests":
        nodes = await inspectorView(location.hash);
        break;
      case "usage":
        nodes = await usageView(location.hash);
        break;
      case "setup":
        nodes = await setupView();
        break;
      case "settings":
        nodes = settingsView();
        break;
      default: {
        // The first run (no config file, no key): the welcome page instead of an empty
        // dashboard.
        const c = state.conf;
        const noKeys = c !== null && c.from_environment && c.providers.every((p) => p.keys.length === 0);
        const init = noKeys ? await get<InitState>("init") : null;
        welcoming = init?.welcome === true;
        nodes = init?.welcome ? await welcomeView(init) : dashboard();
      }
    }
    if (mine === rendering) clear(main, nodes);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) clear(main, signIn());
    else showError(e);
  }
}

/**
 * Whether the user is in the middle of a form on the page (a field focused, or typed into):
 * live events then update the state without redrawing, so nothing typed is lost.
 */
function typing(): boolean {
  const fields = Array.from(
    main.querySelectorAll<HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement>(
      "form input, form textarea, form select",
    ),
  );
  return fields.some((f) => {
    if (f === document.activeElement) return true;
    if (f instanceof HTMLSelectElement)
      return Array.from(f.options).some((o) => o.selected !== o.defaultSelected);
    if (f instanceof HTMLInputElement && (f.type === "checkbox" || f.type === "radio"))
      return f.checked !== f.defaultChecked;
    return f.value !== f.defaultValue;
  });
}

/** The sign-in screen, shown on every view while signed out. */
function signIn(): HTMLElement {
  setLive("live.signed_out", false);
  return h(
    "section",
    { class: "empty sign-in" },
    h("h1", {}, t("signin.title")),
    h("p", {}, t("signin.before"), h("code", {}, "fluxgate console"), t("signin.after")),
  );
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
      setLive("live.live", true);
      if (current() === "dashboard") void render();
      break;
    }
    case "key_state_changed":
    case "proxy_state_changed":
    case "config_reloaded":
    case "routing_paused":
      if (current() === "dashboard" || (current() === "keys" && !typing())) {
        refresh().catch(showError);
      } else {
        get<{ keys: KeyHealth[] }>("keys")
          .then((k) => (state.keys = k.keys))
          .catch(() => undefined);
      }
      break;
    case "config_invalid": {
      const d = JSON.parse(e.data) as Extract<Event, { type: "config_invalid" }>;
      showError(t("main.config_invalid", { error: d.error }));
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
    setLive(status === 401 ? "live.signed_out" : "live.reconnecting", false);
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
    const [r, u, hour, day, month, budgets, history] = await Promise.all([
      get<{ requests: RequestRow[] }>("requests?limit=1000"),
      get<{ usage: { by_key: (KeyUsage & { provider: string | null; key_id: string | null })[] } }>(
        "usage?hours=24",
      ),
      get<DashSeries>("usage/series?span=1h"),
      get<DashSeries>("usage/series?span=24h"),
      get<DashSeries>("usage/series?span=30d"),
      get<{ budgets: { scope: { kind: string }; daily: BudgetPeriod }[] }>("budgets"),
      get<KeyHistory>("keys/history?hours=24"),
    ]);
    const strips = JSON.stringify(state.history?.keys ?? null);
    state.history = history;
    state.requests = r.requests;
    const seen = JSON.stringify([[...state.keyUsage], state.hour, state.day, state.month, state.allBudget]);
    state.keyUsage = new Map(
      u.usage.by_key.filter((x) => x.provider !== null).map((x) => [`${x.provider}/${x.key_id}`, x]),
    );
    state.hour = hour;
    state.day = day;
    state.month = month;
    state.allBudget = budgets.budgets.find((b) => b.scope.kind === "all")?.daily ?? null;
    // The numbers moved: draw the dashboard again with them.
    const now = JSON.stringify([[...state.keyUsage], state.hour, state.day, state.month, state.allBudget]);
    const moved = now !== seen || JSON.stringify(history.keys) !== strips;
    if (moved && current() === "dashboard") void render();
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

document.addEventListener("fluxgate:redraw", () => void render());

document.addEventListener("fluxgate:welcome-done", () => {
  welcoming = false;
  void render();
});

window.addEventListener("hashchange", () => {
  welcoming = false;
  void render();
  // The new page starts at its title, not under the sticky header.
  window.scrollTo({ top: 0 });
  main.focus({ preventScroll: true });
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
