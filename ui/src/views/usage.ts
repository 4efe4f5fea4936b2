// Usage: budgets, and requests, tokens, errors and spend per route, provider and key; each
// row's counts open the request inspector filtered to that row.

import { get, put } from "../api";
import { h } from "../dom";
import { BudgetPeriod, budgetUse, scopeText, bars, compact, percent, usd } from "../format";
import { act, bar, formAct, state } from "../shell";
import { Key, t } from "../i18n";
import {
  barChart,
  Bucket,
  bucketLink,
  countText,
  REQUEST_PARTS,
  SPEND_PARTS,
  spendText,
  TOKEN_PARTS,
} from "../chart";

export interface UsageRow {
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

/** The inspector's address for a usage row (its route, provider or key), failed ones only when `failed`. */
export function inspectorLink(r: UsageRow, failed = false): string {
  const q = new URLSearchParams();
  if (failed) q.set("failed", "1");
  if (r.route) q.set("route", r.route);
  if (r.provider) q.set("provider", r.provider);
  if (r.key_id) q.set("key", r.key_id);
  const s = q.toString();
  return s ? `#requests?${s}` : "#requests";
}

export function chart(title: string, rows: UsageRow[], label: (r: UsageRow) => string): HTMLElement {
  if (rows.length === 0)
    return h("section", {}, h("h2", {}, title), h("p", { class: "empty" }, t("usage.no_requests")));
  const widths = bars(rows.map((r) => r.tokens_in + r.tokens_out));
  const reqWidths = bars(rows.map((r) => r.requests));
  return h(
    "section",
    { class: "chart" },
    h("h2", {}, title),
    h(
      "table",
      {},
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          [
            "",
            t("col.requests"),
            t("col.tokens_in_out"),
            t("col.errors"),
            t("col.cache_hits"),
            t("col.spend"),
          ].map((t) => h("th", { scope: "col" }, t)),
        ),
      ),
      h(
        "tbody",
        {},
        rows.map((r, i) =>
          h(
            "tr",
            {},
            h("th", { scope: "row" }, label(r)),
            h(
              "td",
              {},
              bar("req", reqWidths[i]),
              " ",
              h("a", { href: inspectorLink(r), title: t("usage.show") }, String(r.requests)),
            ),
            h("td", {}, bar("tok", widths[i]), ` ${compact(r.tokens_in)} + ${compact(r.tokens_out)}`),
            h(
              "td",
              {},
              r.errors > 0
                ? h(
                    "a",
                    { href: inspectorLink(r, true), title: t("usage.show_failed") },
                    percent(r.errors, r.requests),
                  )
                : percent(r.errors, r.requests),
            ),
            h("td", {}, r.cache_hit_rate === null ? "–" : `${(100 * r.cache_hit_rate).toFixed(0)}%`),
            h("td", {}, usd(r.cost_usd)),
          ),
        ),
      ),
    ),
  );
}

export interface BudgetRow {
  scope: { kind: string; name?: string };
  daily: BudgetPeriod;
  monthly: BudgetPeriod;
}

/** The budget editor: a scope, its limits, Save (empty limits remove the scope's budget). */
function budgetForm(): HTMLElement {
  const conf = state.conf;
  const names: Record<string, string[]> = {
    key: (conf?.providers ?? []).flatMap((p) => p.keys.map((k) => `${p.name}/${k.id}`)),
    provider: (conf?.providers ?? []).map((p) => p.name),
    route: (conf?.routes ?? []).map((r) => r.name),
    client: [],
  };
  const kind = h(
    "select",
    { name: "kind", "aria-label": t("usage.budget_scope") },
    [
      ["all", t("fmt.all_traffic")],
      ["provider", t("usage.a_provider")],
      ["key", t("usage.a_key")],
      ["route", t("usage.a_route")],
      ["client", t("usage.a_client")],
    ].map(([v, label]) => h("option", { value: v }, label)),
  ) as HTMLSelectElement;
  const name = h("input", {
    name: "name",
    list: "budget-names",
    placeholder: t("col.name"),
    size: 14,
    "aria-label": t("usage.name_label"),
  }) as HTMLInputElement;
  const options = h("datalist", { id: "budget-names" });
  const fillNames = () => {
    options.replaceChildren(...(names[kind.value] ?? []).map((n) => h("option", { value: n })));
    name.hidden = kind.value === "all";
  };
  kind.addEventListener("change", fillNames);
  fillNames();
  const num = (n: string, label: string, step: string) =>
    h("input", {
      name: n,
      type: "number",
      min: 0,
      step,
      placeholder: label,
      "aria-label": label,
      size: 10,
    }) as HTMLInputElement;
  const fields = [
    num("daily_usd", t("usage.usd_day"), "0.01"),
    num("monthly_usd", t("usage.usd_month"), "0.01"),
    num("daily_tokens", t("usage.tokens_day"), "1"),
    num("monthly_tokens", t("usage.tokens_month"), "1"),
  ];
  // Editing an existing budget fills the form.
  const load = (b: BudgetRow) => {
    kind.value = b.scope.kind;
    fillNames();
    name.value = b.scope.name ?? "";
    const [du, mu, dt, mt] = fields;
    du.value = b.daily.limit_usd?.toString() ?? "";
    mu.value = b.monthly.limit_usd?.toString() ?? "";
    dt.value = b.daily.limit_tokens?.toString() ?? "";
    mt.value = b.monthly.limit_tokens?.toString() ?? "";
    form.scrollIntoView({ block: "nearest" });
  };
  const form: HTMLElement = h(
    "form",
    {
      class: "budget-edit",
      onsubmit: (e: Event) => {
        e.preventDefault();
        const body: Record<string, string | number> = { kind: kind.value };
        if (kind.value !== "all") body.name = name.value.trim();
        for (const f of fields) if (f.value !== "") body[f.name] = Number(f.value);
        void formAct(form, () => put("budgets", body));
      },
    },
    kind,
    name,
    options,
    fields,
    h("button", { type: "submit" }, t("usage.save_budget")),
    h("p", { class: "muted" }, t("usage.budget_help")),
  );
  budgetLoader = load;
  return form;
}

/** Fills the budget form with a budget (set by `budgetForm`). */
let budgetLoader: (b: BudgetRow) => void = () => undefined;

export function budgetsSection(list: BudgetRow[]): HTMLElement {
  const editor = budgetForm();
  if (list.length === 0)
    return h(
      "section",
      { class: "chart budgets" },
      h("h2", {}, t("usage.budgets")),
      h("p", { class: "empty" }, t("usage.no_budgets")),
      editor,
    );
  const cell = (p: BudgetPeriod) => {
    const u = budgetUse(p);
    if (!u) return h("td", { class: "muted" }, t("usage.no_limit"));
    const b = bar(
      u.ratio >= 1 ? "over" : u.ratio >= 0.8 ? "warn" : "req",
      Math.min(100, Math.round(u.ratio * 100)),
    );
    return h("td", {}, b, ` ${u.text}`);
  };
  return h(
    "section",
    { class: "chart budgets" },
    h("h2", {}, t("usage.budgets")),
    h(
      "table",
      {},
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          [t("col.scope"), t("col.today"), t("col.month"), ""].map((t) => h("th", { scope: "col" }, t)),
        ),
      ),
      h(
        "tbody",
        {},
        list.map((b) =>
          h(
            "tr",
            { "data-scope": scopeText(b.scope) },
            h("th", { scope: "row" }, scopeText(b.scope)),
            cell(b.daily),
            cell(b.monthly),
            h(
              "td",
              { class: "actions" },
              h(
                "button",
                { type: "button", class: "small", onclick: () => budgetLoader(b) },
                t("common.edit"),
              ),
              h(
                "button",
                {
                  type: "button",
                  class: "small danger",
                  onclick: () => {
                    if (confirm(t("usage.remove_confirm", { scope: scopeText(b.scope) })))
                      void act(t("usage.remove_budget"), () =>
                        put(
                          "budgets",
                          b.scope.kind === "all"
                            ? { kind: "all" }
                            : { kind: b.scope.kind, name: b.scope.name },
                        ),
                      );
                  },
                },
                t("usage.remove"),
              ),
            ),
          ),
        ),
      ),
    ),
    editor,
  );
}

/** The spans the usage page offers, with their length in hours and their words. */
const SPANS: [string, number, Key][] = [
  ["1h", 1, "dash.last_hour"],
  ["24h", 24, "dash.last_24h"],
  ["7d", 168, "usage.last_7d"],
  ["30d", 720, "usage.last_30d"],
];

/** A time series as `/admin/api/usage/series` answers it. */
export interface Series {
  bucket_ms: number;
  buckets: Bucket[];
  source: "fleet" | "local";
}

export async function usageView(hash = ""): Promise<HTMLElement[]> {
  const wanted = new URLSearchParams(hash.split("?")[1] ?? "").get("span");
  const [span, hours, words] = SPANS.find(([id]) => id === wanted) ?? SPANS[1];
  const [usage, budgets, series] = await Promise.all([
    get<{
      usage: { by_route: UsageRow[]; by_provider: UsageRow[]; by_key: UsageRow[] };
      source: "fleet" | "local";
    }>(`usage?hours=${hours}`),
    get<{ budgets: BudgetRow[] }>("budgets"),
    get<Series>(`usage/series?span=${span}`),
  ]);
  const link = (b: Bucket) => bucketLink(b, series.bucket_ms);
  return [
    h("h1", {}, t("usage.title", { span: t(words) })),
    h(
      "nav",
      { class: "span-picker", "aria-label": t("usage.period") },
      SPANS.map(([id, , text]) =>
        h("a", { href: `#usage?span=${id}`, "aria-current": id === span ? "true" : undefined }, t(text)),
      ),
    ),
    h(
      "section",
      { class: "charts" },
      barChart(t("col.requests"), series.buckets, series.bucket_ms, REQUEST_PARTS, countText, link),
      barChart(t("usage.tokens"), series.buckets, series.bucket_ms, TOKEN_PARTS, countText, link),
      barChart(t("col.spend"), series.buckets, series.bucket_ms, SPEND_PARTS, spendText, link),
    ),
    usage.source === "fleet" ? h("p", { class: "muted" }, t("usage.fleet")) : h("span", {}),
    budgetsSection(budgets.budgets),
    chart(t("usage.by_route"), usage.usage.by_route, (r) => r.route ?? t("usage.no_route")),
    chart(t("usage.by_provider"), usage.usage.by_provider, (r) => r.provider ?? t("usage.none_served")),
    chart(t("usage.by_key"), usage.usage.by_key, (r) =>
      r.provider ? `${r.provider}/${r.key_id}` : t("usage.none_served"),
    ),
  ];
}
