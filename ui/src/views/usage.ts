// Requests and usage: budgets, usage per route, provider and key, recent requests.

import { get } from "../api";
import { h } from "../dom";
import { BudgetPeriod, budgetUse, scopeText, bars, compact, percent, usd } from "../format";
import { RequestRow, state, bar } from "../shell";

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

export function chart(title: string, rows: UsageRow[], label: (r: UsageRow) => string): HTMLElement {
  if (rows.length === 0)
    return h("section", {}, h("h2", {}, title), h("p", { class: "empty" }, "No requests in this period."));
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
          ["", "Requests", "Tokens (in + out)", "Errors", "Cache hits", "Spend"].map((t) =>
            h("th", { scope: "col" }, t),
          ),
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

export interface BudgetRow {
  scope: { kind: string; name?: string };
  daily: BudgetPeriod;
  monthly: BudgetPeriod;
}

export function budgetsSection(list: BudgetRow[]): HTMLElement | null {
  if (list.length === 0) return null;
  const cell = (p: BudgetPeriod) => {
    const u = budgetUse(p);
    if (!u) return h("td", { class: "muted" }, "no limit");
    const b = bar(
      u.ratio >= 1 ? "over" : u.ratio >= 0.8 ? "warn" : "req",
      Math.min(100, Math.round(u.ratio * 100)),
    );
    return h("td", {}, b, ` ${u.text}`);
  };
  return h(
    "section",
    { class: "chart" },
    h("h2", {}, "Budgets"),
    h(
      "table",
      {},
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Scope", "Today (UTC)", "This month"].map((t) => h("th", { scope: "col" }, t)),
        ),
      ),
      h(
        "tbody",
        {},
        list.map((b) =>
          h("tr", {}, h("th", { scope: "row" }, scopeText(b.scope)), cell(b.daily), cell(b.monthly)),
        ),
      ),
    ),
  );
}

export async function requestsView(): Promise<HTMLElement[]> {
  const [usage, reqs, budgets] = await Promise.all([
    get<{
      usage: { by_route: UsageRow[]; by_provider: UsageRow[]; by_key: UsageRow[] };
      source: "fleet" | "local";
    }>("usage?hours=24"),
    get<{ requests: RequestRow[] }>("requests?limit=200"),
    get<{ budgets: BudgetRow[] }>("budgets"),
  ]);
  state.requests = reqs.requests;
  return [
    h("h1", {}, "Requests & usage (last 24 h)"),
    usage.source === "fleet"
      ? h("p", { class: "muted" }, "Every replica's traffic (team mode: the fleet's ledger in PostgreSQL).")
      : h("span", {}),
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
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["Time", "Client", "Model", "Served by", "Status", "Attempts", "Latency", "Tokens"].map((t) =>
                  h("th", { scope: "col" }, t),
                ),
              ),
            ),
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
                  h(
                    "td",
                    { title: r.tokens_in === null ? "The upstream reported no usage for this request" : "" },
                    // Unknown is "–", never 0.
                    `${r.tokens_in ?? "–"} / ${r.tokens_out ?? "–"}`,
                  ),
                ),
              ),
            ),
          ),
    ),
  ];
}
