// The Fluxgate console: dashboard, providers and keys, routes with a live explain preview,
// requests and usage, client setup, settings. Hash navigation (#dashboard, #keys, ...);
// live key health from /admin/api/events (SSE).

import "./style.css";
import { ApiError, del, get, patch, post, put, seg } from "./api";
import { clear, h } from "./dom";
import {
  BudgetPeriod,
  budgetUse,
  scopeText,
  bars,
  compact,
  countdown,
  countdownLabel,
  KeyHealth,
  overall,
  parseTargets,
  percent,
  rates,
  reasonText,
  summarise,
  usd,
} from "./format";

interface KeyConf {
  id: string;
  secret: string;
  enabled: boolean;
}
interface ProviderConf {
  name: string;
  kind: string;
  base_url: string;
  enabled: boolean;
  models: string[];
  keys: KeyConf[];
}
interface RouteConf {
  name: string;
  targets: string[];
  strategy: string;
  capability: string[] | null;
}
interface Conf {
  config_file: string | null;
  editable: boolean;
  from_environment: boolean;
  data_dir: string;
  listen: string;
  base_url: string;
  paused: boolean;
  providers: ProviderConf[];
  routes: RouteConf[];
  strategies: string[];
  kinds: string[];
  clients: { id: string; title: string }[];
}
interface RequestRow {
  ts_ms: number;
  request_id: string;
  client: string | null;
  endpoint: string;
  model: string | null;
  route: string | null;
  provider: string | null;
  key_id: string | null;
  attempts: number;
  status: number;
  error_code: string | null;
  latency_ms: number;
  tokens_in: number | null;
  tokens_out: number | null;
}

const VIEWS: [string, string][] = [
  ["dashboard", "Dashboard"],
  ["keys", "Providers & keys"],
  ["routes", "Routes"],
  ["requests", "Requests & usage"],
  ["setup", "Client setup"],
  ["settings", "Settings"],
];

const state = {
  keys: [] as KeyHealth[],
  conf: null as Conf | null,
  requests: [] as RequestRow[],
  connected: false,
};

const main = document.getElementById("main") as HTMLElement;
const banner = document.getElementById("banner") as HTMLElement;
const live = document.getElementById("live") as HTMLElement;

function showError(e: unknown): void {
  const msg = e instanceof Error ? e.message : String(e);
  banner.hidden = false;
  banner.className = "";
  clear(banner, h("span", {}, msg), h("button", { type: "button", onclick: () => (banner.hidden = true) }, "Dismiss"));
}

function notice(msg: string): void {
  banner.hidden = false;
  banner.className = "ok";
  clear(banner, h("span", {}, msg), h("button", { type: "button", onclick: () => (banner.hidden = true) }, "Dismiss"));
  const shown = banner.firstChild;
  // Good news fades after a while; errors stay until dismissed.
  setTimeout(() => {
    if (banner.className === "ok" && banner.firstChild === shown) banner.hidden = true;
  }, 8000);
}

async function act(label: string, f: () => Promise<unknown>): Promise<void> {
  try {
    await f();
    await refresh();
  } catch (e) {
    showError(e instanceof ApiError ? `${label}: ${e.message}` : e);
  }
}

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

async function refresh(): Promise<void> {
  const [keys, conf] = await Promise.all([
    get<{ keys: KeyHealth[] }>("keys"),
    get<Conf>("config"),
  ]);
  state.keys = keys.keys;
  state.conf = conf;
  render();
}

function badge(status: string): HTMLElement {
  return h("span", { class: `badge ${status}`, "data-status": status }, status);
}

// ---------- dashboard ----------

function keyRow(k: KeyHealth, actions: boolean): HTMLElement {
  const label = countdownLabel(k.status);
  return h(
    "tr",
    { "data-key": `${k.provider}/${k.key_id}` },
    h("td", {}, h("code", {}, k.key_id)),
    h("td", {}, badge(k.status)),
    h("td", {}, reasonText(k.reason) || (k.secret_error ? "secret unreadable" : "")),
    h("td", {}, k.last_status ?? ""),
    h(
      "td",
      { class: "countdown" },
      label && k.until_ms !== null
        ? h("span", { "data-until": k.until_ms, "data-label": label }, `${label} ${countdown(k.until_ms, Date.now())}`)
        : "",
    ),
    h("td", { class: "msg" }, k.secret_error ?? k.last_message ?? ""),
    actions
      ? h(
          "td",
          { class: "actions" },
          h("button", { type: "button", onclick: () => testKey(k.provider, k.key_id) }, "Test"),
          k.status !== "healthy" && k.status !== "disabled"
            ? h(
                "button",
                { type: "button", onclick: () => act("Revive", () => post(`keys/${seg(k.provider)}/${seg(k.key_id)}/revive`)) },
                "Revive",
              )
            : null,
        )
      : null,
  );
}

function keyTable(keys: KeyHealth[], actions: boolean): HTMLElement {
  return h(
    "table",
    { class: "keys" },
    h(
      "thead",
      {},
      h("tr", {}, ["Key", "State", "Reason", "Last status", "Recovery", "Last message", actions ? "" : null].filter((x) => x !== null).map((t) => h("th", { scope: "col" }, t as string))),
    ),
    h("tbody", {}, keys.map((k) => keyRow(k, actions))),
  );
}

function dashboard(): HTMLElement[] {
  const conf = state.conf;
  const s = summarise(state.keys);
  const o = overall(s, conf?.paused ?? false);
  const r = rates(state.requests, Date.now());
  const out: HTMLElement[] = [
    h("h1", {}, "Dashboard"),
    h(
      "section",
      { class: `summary ${o}`, "aria-label": "Summary" },
      h("div", { class: "stat" }, h("b", { id: "healthy-count" }, `${s.healthy}/${s.total}`), " keys healthy"),
      h("div", { class: "stat" }, h("b", {}, s.cooling), " cooling"),
      h("div", { class: "stat" }, h("b", {}, s.dead), " dead"),
      h("div", { class: "stat" }, h("b", { id: "req-rate" }, r.perMin.toFixed(1)), " requests/min"),
      h("div", { class: "stat" }, h("b", { id: "err-rate" }, percent(Math.round(r.errorRate * r.n), r.n)), " errors (5 min)"),
      conf?.paused ? h("div", { class: "stat paused" }, "Routing is paused") : null,
    ),
  ];
  if (!conf || conf.providers.length === 0) {
    out.push(
      h(
        "section",
        { class: "empty" },
        h("h2", {}, "No providers yet"),
        h("p", {}, "Add a provider and a key under ", h("a", { href: "#keys" }, "Providers & keys"), ", then point a tool at Fluxgate from ", h("a", { href: "#setup" }, "Client setup"), "."),
      ),
    );
    return out;
  }
  for (const p of conf.providers) {
    const keys = state.keys.filter((k) => k.provider === p.name);
    out.push(
      h(
        "section",
        { class: "provider", "data-provider": p.name },
        h("h2", {}, p.name, " ", h("small", {}, p.kind), p.enabled ? null : h("span", { class: "badge disabled" }, "provider disabled")),
        keys.length ? keyTable(keys, true) : h("p", { class: "empty" }, "No keys. Add one under ", h("a", { href: "#keys" }, "Providers & keys"), "."),
      ),
    );
  }
  return out;
}

async function testKey(provider: string, key: string): Promise<void> {
  try {
    const r = await post<{ ok: boolean; ms: number; status?: number; message?: string }>(`keys/${seg(provider)}/${seg(key)}/test`);
    if (r.ok) notice(`${provider}/${key} works (${r.ms} ms).`);
    else showError(`${provider}/${key} failed its test${r.status ? ` (HTTP ${r.status})` : ""}: ${r.message ?? ""}`);
    await refresh();
  } catch (e) {
    showError(e);
  }
}

// ---------- providers and keys ----------

function providersView(): HTMLElement[] {
  const conf = state.conf;
  if (!conf) return [h("p", {}, "Loading…")];
  const out: HTMLElement[] = [h("h1", {}, "Providers & keys")];
  if (!conf.editable) {
    out.push(h("p", { class: "warn" }, "This Fluxgate has no config file it may edit; changes here are refused."));
  }
  for (const p of conf.providers) {
    const health = new Map(state.keys.filter((k) => k.provider === p.name).map((k) => [k.key_id, k]));
    const idInput = h("input", { name: "id", required: true, pattern: "[A-Za-z0-9._-]{1,64}", placeholder: "work", "aria-label": `New key id for ${p.name}` }) as HTMLInputElement;
    const secretInput = h("input", { name: "secret", type: "password", required: true, autocomplete: "off", placeholder: "paste the API key", "aria-label": `API key for ${p.name}` }) as HTMLInputElement;
    const form = h(
      "form",
      {
        class: "add-key",
        onsubmit: (e: Event) => {
          e.preventDefault();
          const id = idInput.value.trim();
          const secret = secretInput.value;
          secretInput.value = "";
          act("Add key", async () => {
            const r = await put<{ key: string; hint: string }>(`keys/${seg(p.name)}/${seg(id)}`, { secret });
            notice(`${r.key} is stored in the OS keychain (${r.hint}).`);
          });
        },
      },
      idInput,
      secretInput,
      h("button", { type: "submit" }, "Add key to keychain"),
    );
    out.push(
      h(
        "section",
        { class: "provider", "data-provider": p.name },
        h(
          "h2",
          {},
          p.name,
          " ",
          h("small", {}, `${p.kind} · ${p.base_url}`),
          h(
            "label",
            { class: "toggle" },
            h("input", {
              type: "checkbox",
              checked: p.enabled,
              onchange: (e: Event) => act("Provider", () => patch(`providers/${seg(p.name)}`, { enabled: (e.target as HTMLInputElement).checked })),
            }),
            " enabled",
          ),
        ),
        p.keys.length
          ? h(
              "table",
              { class: "keys" },
              h("thead", {}, h("tr", {}, ["Key", "Secret", "State", "", ""].map((t) => h("th", { scope: "col" }, t)))),
              h(
                "tbody",
                {},
                p.keys.map((k) => {
                  const st = health.get(k.id);
                  return h(
                    "tr",
                    { "data-key": `${p.name}/${k.id}` },
                    h("td", {}, h("code", {}, k.id)),
                    h("td", {}, k.secret),
                    h("td", {}, badge(st?.status ?? (k.enabled ? "healthy" : "disabled"))),
                    h("td", {}, st?.until_ms ? h("span", { "data-until": st.until_ms, "data-label": countdownLabel(st.status) }, "") : ""),
                    h(
                      "td",
                      { class: "actions" },
                      h("button", { type: "button", onclick: () => testKey(p.name, k.id) }, "Test"),
                      h("button", { type: "button", onclick: () => act("Revive", () => post(`keys/${seg(p.name)}/${seg(k.id)}/revive`)) }, "Revive"),
                      k.enabled
                        ? h("button", { type: "button", onclick: () => act("Disable", () => post(`keys/${seg(p.name)}/${seg(k.id)}/disable`)) }, "Disable")
                        : h("button", { type: "button", onclick: () => act("Enable", () => post(`keys/${seg(p.name)}/${seg(k.id)}/enable`)) }, "Enable"),
                      h(
                        "button",
                        {
                          type: "button",
                          class: "danger",
                          onclick: () => {
                            if (confirm(`Delete ${p.name}/${k.id} from the config${k.secret === "keychain" ? " and the keychain" : ""}?`)) {
                              act("Delete", () => del(`keys/${seg(p.name)}/${seg(k.id)}`));
                            }
                          },
                        },
                        "Delete",
                      ),
                    ),
                  );
                }),
              ),
            )
          : h("p", { class: "empty" }, "No keys yet: add the first one below."),
        form,
      ),
    );
  }
  const name = h("input", { name: "name", required: true, placeholder: "deepseek", "aria-label": "Provider name" }) as HTMLInputElement;
  const kind = h("select", { name: "kind", "aria-label": "Provider kind" }, conf.kinds.map((k) => h("option", { value: k }, k))) as HTMLSelectElement;
  const base = h("input", { name: "base_url", placeholder: "base URL (empty: the vendor's)", "aria-label": "Base URL" }) as HTMLInputElement;
  const models = h("input", { name: "models", placeholder: "models, comma-separated (optional)", "aria-label": "Models" }) as HTMLInputElement;
  out.push(
    h(
      "section",
      {},
      h("h2", {}, "Add a provider"),
      h(
        "form",
        {
          class: "add-provider",
          onsubmit: (e: Event) => {
            e.preventDefault();
            act("Add provider", () =>
              post("providers", { name: name.value.trim(), kind: kind.value, base_url: base.value.trim() || undefined, models: parseTargets(models.value) }),
            );
          },
        },
        name,
        kind,
        base,
        models,
        h("button", { type: "submit" }, "Add provider"),
      ),
    ),
  );
  return out;
}

// ---------- routes ----------

interface PlanReport {
  candidates?: { provider: string; key_id: string; model: string; why?: string }[];
  skipped?: { provider: string; key_id?: string; model?: string; why: string }[];
  [k: string]: unknown;
}

function planList(plan: PlanReport): HTMLElement {
  const cands = plan.candidates ?? [];
  const skipped = plan.skipped ?? [];
  return h(
    "div",
    { class: "plan" },
    cands.length
      ? h("ol", { class: "order" }, cands.map((c) => h("li", {}, h("code", {}, `${c.provider}/${c.key_id}`), ` → ${c.model}`, c.why ? h("small", {}, ` (${c.why})`) : null)))
      : h("p", { class: "warn" }, "No candidate could serve this route now."),
    skipped.length
      ? h("ul", { class: "skipped" }, skipped.map((s) => h("li", {}, h("code", {}, `${s.provider}${s.key_id ? "/" + s.key_id : ""}`), ` skipped: ${s.why}`)))
      : null,
  );
}

function routeEditor(r: RouteConf | null, conf: Conf): HTMLElement {
  const nameIn = h("input", { name: "route", required: true, value: r?.name ?? "", placeholder: "claude-sonnet-4-5", "aria-label": "Route name (the model name clients ask for)", readonly: r !== null }) as HTMLInputElement;
  const targets = h("textarea", { name: "targets", rows: 3, "aria-label": "Targets, one provider/model per line", placeholder: "anthropic/claude-sonnet-4-5\nopenai/gpt-4o" }, (r?.targets ?? []).join("\n")) as HTMLTextAreaElement;
  const strategy = h("select", { name: "strategy", "aria-label": "Strategy" }, conf.strategies.map((s) => h("option", { value: s, selected: s === (r?.strategy ?? "priority") }, s))) as HTMLSelectElement;
  const preview = h("div", { class: "preview", "aria-live": "polite" }, h("p", { class: "muted" }, "Edit the targets to see the order Fluxgate would try."));
  let timer: ReturnType<typeof setTimeout> | undefined;
  let seq = 0;
  const update = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const name = nameIn.value.trim();
      const list = parseTargets(targets.value);
      if (!name || list.length === 0) return;
      const mine = ++seq;
      try {
        const plan = await post<PlanReport>(`routes/${seg(name)}/preview`, { targets: list, strategy: strategy.value });
        if (mine === seq) clear(preview, h("h3", {}, "Explain: the order for the next request"), planList(plan));
      } catch (e) {
        if (mine === seq) clear(preview, h("p", { class: "error" }, e instanceof Error ? e.message : String(e)));
      }
    }, 250);
  };
  targets.addEventListener("input", update);
  strategy.addEventListener("change", update);
  nameIn.addEventListener("input", update);
  if (r) update();
  return h(
    "form",
    {
      class: "route-edit",
      "data-route": r?.name ?? "",
      onsubmit: (e: Event) => {
        e.preventDefault();
        act("Save route", async () => {
          await put(`routes/${seg(nameIn.value.trim())}`, { targets: parseTargets(targets.value), strategy: strategy.value });
          notice(`Route ${nameIn.value.trim()} saved to the config file.`);
        });
      },
    },
    h("div", { class: "fields" }, nameIn, targets, strategy, h("button", { type: "submit" }, r ? "Save" : "Create route"),
      r ? h("button", { type: "button", class: "danger", onclick: () => confirm(`Delete route ${r.name}?`) && act("Delete route", () => del(`routes/${seg(r.name)}`)) }, "Delete") : null),
    preview,
  );
}

function routesView(): HTMLElement[] {
  const conf = state.conf;
  if (!conf) return [h("p", {}, "Loading…")];
  const out: HTMLElement[] = [h("h1", {}, "Routes")];
  out.push(h("p", { class: "muted" }, "A route is a model name your tools ask for; Fluxgate tries its targets in the order shown. A model named provider/model works without a route."));
  if (conf.routes.length === 0) out.push(h("p", { class: "empty" }, "No routes yet."));
  for (const r of conf.routes) {
    out.push(h("section", { class: "route" }, h("h2", {}, r.name, " ", h("small", {}, r.capability ? `capability: ${r.capability.join(", ")}` : r.strategy)), routeEditor(r, conf)));
  }
  out.push(h("section", {}, h("h2", {}, "New route"), routeEditor(null, conf)));
  return out;
}

// ---------- requests and usage ----------

interface UsageRow {
  route?: string | null;
  provider?: string | null;
  key_id?: string | null;
  requests: number;
  errors: number;
  tokens_in: number;
  tokens_out: number;
  cost_usd: number;
  cache_hit_rate: number | null;
}

// Widths are set through the CSSOM: the CSP allows no inline style attributes.
function bar(kind: string, width: number): HTMLElement {
  const el = h("span", { class: `bar ${kind}` });
  el.style.width = `${width}%`;
  return el;
}

function chart(title: string, rows: UsageRow[], label: (r: UsageRow) => string): HTMLElement {
  if (rows.length === 0) return h("section", {}, h("h2", {}, title), h("p", { class: "empty" }, "No requests in this period."));
  const widths = bars(rows.map((r) => r.tokens_in + r.tokens_out));
  const reqWidths = bars(rows.map((r) => r.requests));
  return h(
    "section",
    { class: "chart" },
    h("h2", {}, title),
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, ["", "Requests", "Tokens (in + out)", "Errors", "Cache hits", "Spend"].map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        rows.map((r, i) =>
          h(
            "tr",
            {},
            h("th", { scope: "row" }, label(r)),
            h("td", {}, bar("req", reqWidths[i]), ` ${r.requests}`),
            h("td", {}, bar("tok", widths[i]), ` ${compact(r.tokens_in)} + ${compact(r.tokens_out)}`),
            h("td", {}, percent(r.errors, r.requests)),
            h("td", {}, r.cache_hit_rate === null ? "–" : `${(100 * r.cache_hit_rate).toFixed(0)}%`),
            h("td", {}, usd(r.cost_usd)),
          ),
        ),
      ),
    ),
  );
}

interface BudgetRow {
  scope: { kind: string; name?: string };
  daily: BudgetPeriod;
  monthly: BudgetPeriod;
}

function budgetsSection(list: BudgetRow[]): HTMLElement | null {
  if (list.length === 0) return null;
  const cell = (p: BudgetPeriod) => {
    const u = budgetUse(p);
    if (!u) return h("td", { class: "muted" }, "no limit");
    const b = bar(u.ratio >= 1 ? "over" : u.ratio >= 0.8 ? "warn" : "req", Math.min(100, Math.round(u.ratio * 100)));
    return h("td", {}, b, ` ${u.text}`);
  };
  return h(
    "section",
    { class: "chart" },
    h("h2", {}, "Budgets"),
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, ["Scope", "Today (UTC)", "This month"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, list.map((b) => h("tr", {}, h("th", { scope: "row" }, scopeText(b.scope)), cell(b.daily), cell(b.monthly)))),
    ),
  );
}

async function requestsView(): Promise<HTMLElement[]> {
  const [usage, reqs, budgets] = await Promise.all([
    get<{ usage: { by_route: UsageRow[]; by_provider: UsageRow[]; by_key: UsageRow[] } }>("usage?hours=24"),
    get<{ requests: RequestRow[] }>("requests?limit=200"),
    get<{ budgets: BudgetRow[] }>("budgets"),
  ]);
  state.requests = reqs.requests;
  return [
    h("h1", {}, "Requests & usage (last 24 h)"),
    budgetsSection(budgets.budgets) ?? h("span", {}),
    chart("By route", usage.usage.by_route, (r) => r.route ?? "(direct provider/model)"),
    chart("By provider", usage.usage.by_provider, (r) => r.provider ?? "(none served)"),
    chart("By key", usage.usage.by_key, (r) => (r.provider ? `${r.provider}/${r.key_id}` : "(none served)")),
    h(
      "section",
      {},
      h("h2", {}, "Recent requests"),
      reqs.requests.length === 0
        ? h("p", { class: "empty" }, "No requests yet. Point a tool at Fluxgate (Client setup).")
        : h(
            "table",
            { class: "requests" },
            h("thead", {}, h("tr", {}, ["Time", "Client", "Model", "Served by", "Status", "Attempts", "Latency", "Tokens"].map((t) => h("th", { scope: "col" }, t)))),
            h(
              "tbody",
              {},
              reqs.requests.map((r) =>
                h(
                  "tr",
                  { class: r.status >= 400 || r.error_code ? "failed" : "" },
                  h("td", {}, new Date(r.ts_ms).toLocaleTimeString()),
                  h("td", {}, r.client ?? ""),
                  h("td", {}, r.model ?? ""),
                  h("td", {}, r.provider ? `${r.provider}/${r.key_id}` : ""),
                  h("td", {}, r.error_code ? `${r.status} ${r.error_code}` : r.status),
                  h("td", {}, r.attempts),
                  h("td", {}, `${r.latency_ms} ms`),
                  h("td", {}, r.tokens_in === null ? "" : `${r.tokens_in} / ${r.tokens_out ?? 0}`),
                ),
              ),
            ),
          ),
    ),
  ];
}

// ---------- client setup ----------

function setupView(): HTMLElement[] {
  const conf = state.conf;
  if (!conf) return [h("p", {}, "Loading…")];
  const out: HTMLElement[] = [
    h("h1", {}, "Client setup"),
    h("p", {}, "Base URL: ", h("code", { id: "base-url" }, conf.base_url), " ", h("button", { type: "button", onclick: () => copy(conf.base_url) }, "Copy")),
  ];
  for (const c of conf.clients) {
    const text = h("pre", { class: "snippet", "data-client": c.id, tabindex: 0 }, "") as HTMLElement;
    const copyBtn = h("button", { type: "button", disabled: true, onclick: () => copy(text.textContent ?? "") }, "Copy") as HTMLButtonElement;
    out.push(
      h(
        "section",
        {},
        h("h2", {}, c.title),
        h(
          "button",
          {
            type: "button",
            onclick: async () => {
              try {
                const r = await post<{ text: string; token_name: string }>("setup", { client: c.id });
                text.textContent = r.text;
                copyBtn.disabled = false;
                notice(`Client token “${r.token_name}” made for ${c.title}; it is shown only here, now.`);
              } catch (e) {
                showError(e);
              }
            },
          },
          "Make a token and show the setup",
        ),
        " ",
        copyBtn,
        text,
      ),
    );
  }
  return out;
}

async function copy(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    notice("Copied.");
  } catch {
    showError("The clipboard is not available here; select the text and copy it.");
  }
}

// ---------- settings ----------

function settingsView(): HTMLElement[] {
  const conf = state.conf;
  if (!conf) return [h("p", {}, "Loading…")];
  return [
    h("h1", {}, "Settings"),
    h(
      "section",
      {},
      h("h2", {}, "Routing"),
      h("p", {}, conf.paused ? "Routing is paused: tools get 503 routing_paused and nothing is sent upstream." : "Routing is on."),
      conf.paused
        ? h("button", { type: "button", id: "resume", onclick: () => act("Resume", () => post("resume")) }, "Resume routing")
        : h("button", { type: "button", id: "pause", onclick: () => act("Pause", () => post("pause")) }, "Pause routing"),
    ),
    h(
      "section",
      {},
      h("h2", {}, "Where things are"),
      h(
        "dl",
        {},
        h("dt", {}, "Listening on"),
        h("dd", {}, h("code", {}, conf.listen)),
        h("dt", {}, "Config file"),
        h("dd", {}, h("code", {}, conf.config_file ?? "none"), conf.from_environment ? " (not written yet: providers come from environment variables; the first change here creates it)" : ""),
        h("dt", {}, "Data directory"),
        h("dd", {}, h("code", {}, conf.data_dir)),
        h("dt", {}, "Keys"),
        h("dd", {}, "in the OS keychain (service “fluxgate”), or where the config's env:/file: references say"),
      ),
      h("p", { class: "muted" }, "Edits made here are written to the config file with its comments kept; edits made to the file by hand are picked up within a second."),
    ),
    h(
      "section",
      {},
      h("h2", {}, "Session"),
      h("button", { type: "button", onclick: () => act("Sign out", () => post("logout")).then(() => location.reload()) }, "Sign out of this console"),
    ),
  ];
}

// ---------- rendering, live updates ----------

let rendering = 0;

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
        nodes = setupView();
        break;
      case "settings":
        nodes = settingsView();
        break;
      default:
        nodes = dashboard();
    }
    if (mine === rendering) clear(main, nodes);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      clear(main, h("section", { class: "empty" }, h("h1", {}, "Sign in"), h("p", {}, "Open the console from the Fluxgate tray menu, or run ", h("code", {}, "fluxgate console"), " for a one-time login link.")));
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

function connect(): void {
  const es = new EventSource("/admin/api/events");
  es.addEventListener("snapshot", (e) => {
    const d = JSON.parse((e as MessageEvent).data) as { keys: KeyHealth[] };
    state.keys = d.keys;
    state.connected = true;
    live.textContent = "live";
    live.className = "live on";
    if (current() === "dashboard") render();
  });
  const onChange = () => {
    if (current() === "dashboard" || current() === "keys") {
      refresh().catch(showError);
    } else {
      get<{ keys: KeyHealth[] }>("keys").then((k) => (state.keys = k.keys)).catch(() => undefined);
    }
  };
  for (const t of ["key_state_changed", "config_reloaded", "routing_paused"]) es.addEventListener(t, onChange);
  es.addEventListener("config_invalid", (e) => {
    const d = JSON.parse((e as MessageEvent).data) as { error: string };
    showError(`The config file was edited but is invalid; the running config stays: ${d.error}`);
  });
  es.onerror = () => {
    live.textContent = "reconnecting…";
    live.className = "live off";
  };
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

window.addEventListener("hashchange", () => {
  render();
  main.focus();
});

async function start(): Promise<void> {
  try {
    await refresh();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      render();
      return;
    }
    showError(e);
    return;
  }
  connect();
  pollRates();
  setInterval(tick, 1000);
  setInterval(pollRates, 10_000);
}

start();
