// The request inspector: every request with its route, the key that served it, status, times,
// tokens and cost; filters kept in the address (#requests?failed=1&route=fast, so any count
// elsewhere can link here); live updates while the view is open (a cursor, so nothing is
// missed or shown twice); a detail row with each attempt; older pages; export as JSON lines.

import type { AttemptRecord, KeptBodies } from "../generated/api";
import { ApiError, get, seg } from "../api";
import { h } from "../dom";
import { compact, filterQuery, filtersFromHash, InspectorFilters, millis, outcomeText, usd } from "../format";
import { sessionHeaders } from "../session";
import { copy, RequestRow, showError, state } from "../shell";
import { Key, lang, t } from "../i18n";

/** A route that keeps its requests' bodies, and for how long and how much. */
interface Keeping {
  route: string;
  hours: number;
  max_bytes: number;
}

interface Page {
  requests: RequestRow[];
  head: number;
  source: "fleet" | "local";
  keeping_bodies: Keeping[];
}

function keepingText(k: Keeping): string {
  return t("insp.keeping_text", {
    route: k.route,
    hours: k.hours,
    kib: compact(Math.round(k.max_bytes / 1024)),
  });
}

/** A kept body, with what was cut said. */
function bodyBlock(title: string, text: string, bytes: number, cut: boolean): HTMLElement {
  return h(
    "div",
    { class: "kept-body" },
    h(
      "h4",
      {},
      title,
      cut ? h("span", { class: "muted" }, ` ${t("insp.cut", { bytes: compact(bytes) })}`) : null,
    ),
    h("pre", { class: "snippet" }, text || t("insp.empty")),
  );
}

/** The bodies section of a request's detail, filled once its detail is fetched. */
function bodiesSection(r: RequestRow, keeping: Keeping[]): HTMLElement {
  const el = h("div", { class: "bodies" });
  const k = keeping.find((x) => x.route === r.route);
  if (!k) {
    el.append(h("p", { class: "muted" }, t("insp.no_bodies_route")));
    return el;
  }
  el.append(h("p", { class: "muted" }, t("insp.loading_bodies")));
  get<{ bodies: KeptBodies | null }>(`requests/${seg(r.request_id)}`)
    .then((d) => {
      el.replaceChildren();
      const b = d.bodies;
      if (!b) {
        el.append(h("p", { class: "muted" }, t("insp.no_bodies")));
        return;
      }
      el.append(
        h(
          "p",
          { class: "notice" },
          t("insp.kept_because", {
            route: k.route,
            how: keepingText(k),
            when: new Date(b.expires_ms).toLocaleString(lang()),
          }),
        ),
        bodyBlock(t("insp.request"), b.request, b.request_bytes, b.request_cut),
        bodyBlock(t("insp.response"), b.response, b.response_bytes, b.response_cut),
      );
    })
    .catch((e: unknown) => {
      el.replaceChildren(h("p", { class: "error" }, e instanceof Error ? e.message : String(e)));
    });
  return el;
}

/** How often the open view asks for requests that finished since. */
const POLL_MS = 2000;
/** The most rows the table keeps (live rows push the oldest out). */
const MAX_ROWS = 500;

/** The poll of the view on screen; a new render stops the previous one. */
let poll: ReturnType<typeof setInterval> | undefined;

function stopPolling(): void {
  if (poll !== undefined) clearInterval(poll);
  poll = undefined;
}

const last = <T>(xs: T[]): T | undefined => xs[xs.length - 1];

const failedRow = (r: RequestRow) => r.status >= 400 || r.error_code !== null;

function servedBy(r: RequestRow): string {
  if (!r.provider) return "–";
  return `${r.provider}/${r.key_id}`;
}

function routeText(r: RequestRow): string {
  if (r.route === null) return t("usage.no_route");
  return r.route === r.model ? r.route : `${r.route}`;
}

function tokensText(r: RequestRow): string {
  // Unknown is "–", never 0.
  if (r.tokens_in === null && r.tokens_out === null) return "–";
  const cached = r.tokens_cached ? ` ${t("insp.cached", { n: compact(r.tokens_cached) })}` : "";
  return `${r.tokens_in === null ? "–" : compact(r.tokens_in)} / ${r.tokens_out === null ? "–" : compact(r.tokens_out)}${cached}`;
}

function attemptsTable(log: AttemptRecord[]): HTMLElement {
  if (log.length === 0) return h("p", { class: "muted" }, t("insp.no_attempt"));
  return h(
    "table",
    { class: "attempts" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        [
          "#",
          t("col.key"),
          t("col.model"),
          t("col.started"),
          t("col.took"),
          t("col.first_byte"),
          t("col.outcome"),
          t("col.status"),
          t("col.error"),
        ].map((x) => h("th", { scope: "col" }, x)),
      ),
    ),
    h(
      "tbody",
      {},
      log.map((a, i) =>
        h(
          "tr",
          { class: a.outcome === "served" ? "" : "failed", "data-outcome": a.outcome },
          h("td", {}, i + 1),
          h(
            "td",
            {},
            `${a.provider}/${a.key_id}`,
            a.proxy ? h("span", { class: "muted" }, ` ${t("dash.via", { proxy: a.proxy })}`) : null,
          ),
          h("td", {}, a.model),
          h("td", {}, `+${millis(a.at_ms)}`),
          h("td", {}, millis(a.ms)),
          h("td", {}, millis(a.first_byte_ms)),
          h("td", {}, outcomeText(a.outcome)),
          h("td", {}, a.status ?? "–"),
          h(
            "td",
            { class: "error-text" },
            a.error_class ? h("code", {}, a.error_class) : null,
            a.error ? ` ${a.error}` : "",
          ),
        ),
      ),
    ),
  );
}

function detail(r: RequestRow): HTMLElement {
  const item = (term: string, value: Node | string) => [h("dt", {}, term), h("dd", {}, value)];
  return h(
    "div",
    { class: "request-detail" },
    h(
      "dl",
      {},
      item(
        t("insp.request_id"),
        h(
          "span",
          {},
          h("code", {}, r.request_id),
          " ",
          h(
            "button",
            { type: "button", class: "small", onclick: () => void copy(r.request_id) },
            t("common.copy"),
          ),
        ),
      ),
      item(t("insp.arrived"), new Date(r.ts_ms).toLocaleString(lang())),
      item(t("insp.endpoint"), `${r.endpoint}${r.stream ? ` ${t("insp.streamed")}` : ""}`),
      item(t("col.route"), routeText(r)),
      item(t("insp.upstream_model"), r.upstream_model ?? "–"),
      item(t("col.client"), r.client ?? "–"),
      item(t("col.status"), r.error_code ? `${r.status} ${r.error_code}` : String(r.status)),
      item(t("col.time"), t("insp.time", { total: millis(r.latency_ms), first: millis(r.ttfb_ms) })),
      item(
        t("col.tokens_in_out_short"),
        r.est_tokens === null
          ? tokensText(r)
          : t("insp.estimated", {
              n: compact(r.est_tokens),
              cost: r.est_cost_usd === null ? "" : `, ${usd(r.est_cost_usd)}`,
            }),
      ),
      item(t("col.cost"), r.cost_usd === null ? t("insp.no_cost") : usd(r.cost_usd)),
    ),
    h("h3", {}, t("insp.attempts", { n: r.attempt_log.length })),
    attemptsTable(r.attempt_log),
  );
}

function row(r: RequestRow, cols: number, keeping: Keeping[]): HTMLElement[] {
  const open = h(
    "button",
    { type: "button", class: "disclose", "aria-expanded": "false", title: t("insp.show_attempts") },
    "▸",
  );
  const tr = h(
    "tr",
    { class: failedRow(r) ? "failed" : "", "data-request": r.request_id },
    h("td", {}, open),
    h("td", {}, new Date(r.ts_ms).toLocaleTimeString(lang())),
    h("td", {}, r.client ?? ""),
    h("td", {}, r.model ?? ""),
    h("td", { class: r.route === null ? "muted" : "" }, routeText(r)),
    h("td", {}, servedBy(r)),
    h("td", {}, r.error_code ? `${r.status} ${r.error_code}` : r.status),
    h("td", {}, r.attempts),
    h("td", {}, millis(r.latency_ms)),
    h(
      "td",
      {
        title:
          r.tokens_in === null
            ? t(r.est_tokens === null ? "insp.no_usage" : "insp.no_usage_est", { n: r.est_tokens ?? 0 })
            : "",
      },
      tokensText(r),
    ),
    h("td", {}, r.cost_usd === null ? "–" : usd(r.cost_usd)),
  );
  const cell = h("td", { colspan: cols }, detail(r));
  const more = h("tr", { class: "detail", hidden: true }, cell);
  let bodies = false;
  const toggle = () => {
    const opening = more.hidden;
    if (opening && !bodies) {
      // Bodies are read when first opened (they can be large).
      bodies = true;
      cell.append(bodiesSection(r, keeping));
    }
    more.hidden = !opening;
    open.setAttribute("aria-expanded", String(opening));
    open.textContent = opening ? "▾" : "▸";
  };
  open.addEventListener("click", toggle);
  return [tr, more];
}

const COLUMNS: (Key | "")[] = [
  "",
  "col.time",
  "col.client",
  "col.model",
  "col.route",
  "col.served_by",
  "col.status",
  "col.attempts",
  "col.time_taken",
  "col.tokens_in_out_short",
  "col.cost",
];

function filterForm(f: InspectorFilters): HTMLElement {
  const conf = state.conf;
  const go = (next: InspectorFilters) => {
    const q = filterQuery(next);
    location.hash = q ? `#requests?${q}` : "#requests";
  };
  const select = (name: "route" | "provider", label: string, options: string[]) =>
    h(
      "label",
      {},
      `${label} `,
      h(
        "select",
        { name, onchange: (e: Event) => go({ ...f, [name]: (e.target as HTMLSelectElement).value }) },
        h("option", { value: "" }, t("insp.any")),
        [...new Set([...options, f[name]].filter((o) => o !== ""))].map((o) =>
          h("option", { value: o, selected: o === f[name] }, o),
        ),
      ),
    );
  const check = (name: "failed" | "retried", label: string) =>
    h(
      "label",
      {},
      h("input", {
        type: "checkbox",
        name,
        checked: f[name],
        onchange: (e: Event) => go({ ...f, [name]: (e.target as HTMLInputElement).checked }),
      }),
      ` ${label}`,
    );
  const text = (name: "key" | "client" | "model", label: string) =>
    h(
      "label",
      {},
      `${label} `,
      h("input", {
        type: "search",
        name,
        value: f[name],
        size: 10,
        onchange: (e: Event) => go({ ...f, [name]: (e.target as HTMLInputElement).value.trim() }),
      }),
    );
  return h(
    "form",
    { class: "filters", onsubmit: (e: Event) => e.preventDefault() },
    check("failed", t("insp.failed_only")),
    check("retried", t("insp.failed_over_only")),
    select(
      "route",
      t("col.route"),
      (conf?.routes ?? []).map((r) => r.name),
    ),
    select(
      "provider",
      t("keys.provider"),
      (conf?.providers ?? []).map((p) => p.name),
    ),
    text("key", t("insp.key_id")),
    text("client", t("col.client")),
    text("model", t("col.model")),
    f.since_ms || f.until_ms
      ? h(
          "span",
          { class: "time-window" },
          `${t("insp.between", {
            from: f.since_ms ? new Date(Number(f.since_ms)).toLocaleString(lang()) : t("insp.the_start"),
            to: f.until_ms ? new Date(Number(f.until_ms)).toLocaleString(lang()) : t("dash.now"),
          })} `,
          h(
            "button",
            {
              type: "button",
              class: "small",
              title: t("insp.any_time_title"),
              onclick: () => go({ ...f, since_ms: "", until_ms: "" }),
            },
            t("insp.any_time"),
          ),
        )
      : null,
    filterQuery(f) ? h("a", { href: "#requests" }, t("insp.clear")) : null,
  );
}

async function exportRows(f: InspectorFilters): Promise<void> {
  try {
    const resp = await fetch(`/admin/api/requests/export?${filterQuery(f)}`, {
      credentials: "same-origin",
      headers: sessionHeaders(),
    });
    if (!resp.ok) throw new ApiError(resp.status, "error", t("insp.export_failed", { status: resp.status }));
    const url = URL.createObjectURL(await resp.blob());
    const a = h("a", { href: url, download: "fluxgate-requests.jsonl" });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (e) {
    showError(e);
  }
}

export async function inspectorView(hash: string): Promise<HTMLElement[]> {
  stopPolling();
  const f = filtersFromHash(hash);
  const first = await get<Page>(`requests?${filterQuery(f, { limit: 100 })}`);
  let source = first.source;
  let cursor = first.head;
  let oldest = last(first.requests)?.seq ?? null;
  let shown = first.requests.length;
  const cols = COLUMNS.length;
  const keeping = first.keeping_bodies;
  const body = h(
    "tbody",
    {},
    first.requests.flatMap((r) => row(r, cols, keeping)),
  );
  const empty = h("p", { class: "empty" }, filterQuery(f) ? t("insp.no_match") : t("insp.none_yet"));
  empty.hidden = shown > 0;
  const table = h(
    "table",
    { class: "requests", "data-filters": filterQuery(f) },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        COLUMNS.map((k) => h("th", { scope: "col" }, k ? t(k) : "")),
      ),
    ),
    body,
  );
  table.hidden = shown === 0;
  const liveBox = h("input", { type: "checkbox", name: "live", checked: true });
  const status = h("span", { class: "muted live-status" }, t("insp.live_hint"));
  const older = h(
    "button",
    { type: "button", class: "older", hidden: first.requests.length < 100 },
    t("insp.older"),
  );
  older.addEventListener("click", () => {
    if (oldest === null) return;
    get<Page>(`requests?${filterQuery(f, { limit: 100, before: oldest })}`)
      .then((p) => {
        body.append(...p.requests.flatMap((r) => row(r, cols, keeping)));
        oldest = last(p.requests)?.seq ?? oldest;
        older.hidden = p.requests.length < 100;
      })
      .catch(showError);
  });
  const tick = async () => {
    // The view was left or redrawn: this poll is over.
    if (!table.isConnected) return stopPolling();
    if (!(liveBox as HTMLInputElement).checked) return;
    try {
      const p = await get<Page>(`requests?${filterQuery(f, { after: cursor, limit: 1000 })}`);
      if (p.source !== source) {
        // Another numbering (PostgreSQL stopped or started answering): go on from its head.
        source = p.source;
        cursor = p.head;
        return;
      }
      const rows = p.requests;
      cursor = rows.length >= 1000 ? (last(rows)?.seq ?? p.head) : Math.max(cursor, p.head);
      if (rows.length === 0) return;
      // Oldest first from the API; the table is newest first.
      for (const r of rows) body.prepend(...row(r, cols, keeping));
      shown += rows.length;
      while (body.children.length > 2 * MAX_ROWS) body.lastElementChild?.remove();
      table.hidden = false;
      empty.hidden = true;
      status.textContent = t("insp.live_new", {
        n: rows.length,
        time: new Date().toLocaleTimeString(lang()),
      });
    } catch {
      status.textContent = t("insp.live_paused");
    }
  };
  poll = setInterval(() => void tick(), POLL_MS);
  return [
    h("h1", {}, t("insp.title")),
    first.source === "fleet" ? h("p", { class: "muted" }, t("insp.fleet")) : null,
    keeping.length > 0
      ? h(
          "p",
          { class: "notice keeping" },
          t("insp.keeping"),
          keeping.map(keepingText).join(t("dash.sep")),
          t("insp.period"),
        )
      : null,
    filterForm(f),
    h(
      "div",
      { class: "inspector-bar" },
      h("label", {}, liveBox, ` ${t("insp.live")}`),
      status,
      h("button", { type: "button", class: "export", onclick: () => void exportRows(f) }, t("insp.export")),
    ),
    empty,
    table,
    older,
  ].filter((x): x is HTMLElement => x !== null);
}
