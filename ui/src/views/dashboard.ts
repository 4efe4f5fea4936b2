// Dashboard: every provider's keys with state, reason, last status and a live countdown.

import { post, seg } from "../api";
import { h, s } from "../dom";
import { barChart, bucketLink, countText, REQUEST_PARTS } from "../chart";
import {
  ago,
  balanceText,
  budgetUse,
  countdown,
  countdownLabel,
  KeyHealth,
  keyNote,
  overall,
  percent,
  rates,
  reasonText,
  statusText,
  summarise,
  usd,
} from "../format";
import { lang, t } from "../i18n";
import { state, showError, notice, act, refresh, badge, bar } from "../shell";

/** A key's last 24 hours (requests, failures, spend) and when it was last used, from the usage poll. */
function usageCell(k: KeyHealth): HTMLElement {
  const u = state.keyUsage.get(`${k.provider}/${k.key_id}`);
  if (!u) return h("td", { class: "muted" }, t("dash.no_requests"));
  const q = new URLSearchParams({ provider: k.provider, key: k.key_id });
  return h(
    "td",
    { class: "key-usage" },
    h(
      "a",
      {
        href: `#requests?${q.toString()}`,
        title: t("dash.usage_title"),
      },
      t("dash.n_req", { n: u.requests }),
    ),
    u.errors > 0
      ? [
          " · ",
          h(
            "a",
            { href: `#requests?failed=1&${q.toString()}`, class: "warn" },
            t("dash.n_failed", { n: u.errors }),
          ),
        ]
      : null,
    ` · ${usd(u.cost_usd)}`,
    u.last_ms === null
      ? null
      : h("div", { class: "muted last-used" }, t("dash.used_ago", { ago: ago(u.last_ms, Date.now()) })),
  );
}

export function keyRow(k: KeyHealth, actions: boolean): HTMLElement {
  const label = countdownLabel(k.status);
  const note = keyNote(k, Date.now());
  return h(
    "tr",
    { "data-key": `${k.provider}/${k.key_id}` },
    h(
      "td",
      {},
      h("code", {}, k.key_id),
      k.proxy
        ? h("div", { class: "muted via", title: t("dash.via_title") }, t("dash.via", { proxy: k.proxy }))
        : null,
      k.balance
        ? h(
            "div",
            {
              class: k.balance.low ? "warn balance" : "muted balance",
              "data-balance": k.balance.remaining ?? "",
              title: k.balance.low
                ? t(k.balance.out_of_rotation ? "dash.low_title_out" : "dash.low_title", {
                    threshold: k.balance.threshold ?? "",
                  })
                : (k.balance.error ?? t("dash.balance_title")),
            },
            balanceText(k.balance) + (k.balance.out_of_rotation ? t("dash.out_of_rotation_suffix") : ""),
          )
        : null,
    ),
    h("td", {}, badge(k.status)),
    h(
      "td",
      {},
      note.reason === t("fmt.proxy_failing")
        ? h("span", { class: "warn", "data-proxy-error": "" }, note.reason)
        : note.reason,
    ),
    h("td", { class: note.history ? "muted" : "" }, k.last_status ?? ""),
    h(
      "td",
      { class: "countdown" },
      label && k.until_ms !== null
        ? h(
            "span",
            { "data-until": k.until_ms, "data-label": label },
            `${label} ${countdown(k.until_ms, Date.now())}`,
          )
        : "",
    ),
    h("td", { class: note.history ? "msg history" : "msg" }, note.message),
    usageCell(k),
    actions
      ? h(
          "td",
          { class: "actions" },
          h(
            "button",
            {
              type: "button",
              title: t("dash.test_title"),
              onclick: () => testKey(k.provider, k.key_id),
            },
            t("keys.test"),
          ),
          k.balance
            ? h(
                "button",
                {
                  type: "button",
                  title: t("dash.balance_btn_title"),
                  onclick: () =>
                    act(t("dash.check_balance"), () =>
                      post(`keys/${seg(k.provider)}/${seg(k.key_id)}/balance`),
                    ),
                },
                t("dash.balance"),
              )
            : null,
          k.status !== "healthy" && k.status !== "disabled"
            ? h(
                "button",
                {
                  type: "button",
                  title: t("dash.revive_title"),
                  onclick: () =>
                    act(t("keys.revive"), () => post(`keys/${seg(k.provider)}/${seg(k.key_id)}/revive`)),
                },
                t("keys.revive"),
              )
            : null,
        )
      : null,
  );
}

export function keyTable(keys: KeyHealth[], actions: boolean): HTMLElement {
  return h(
    "table",
    { class: "keys" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        [
          t("col.key"),
          t("col.state"),
          t("col.reason"),
          t("col.last_status"),
          t("col.recovery"),
          t("col.last_message"),
          t("col.served_24h"),
          actions ? "" : null,
        ]
          .filter((x) => x !== null)
          .map((t) => h("th", { scope: "col" }, t)),
      ),
    ),
    h(
      "tbody",
      {},
      keys.map((k) => keyRow(k, actions)),
    ),
  );
}

/** What the dashboard says when a team engine does not answer (null when all answer). */
export function sharedAway(conf: typeof state.conf): string | null {
  if (!conf) return null;
  const parts: string[] = [];
  if (conf.shared.redis !== null && conf.shared.up === false) {
    parts.push(t("dash.redis_away"));
  }
  if (conf.shared.postgres !== null && conf.shared.postgres_up === false) {
    parts.push(t("dash.pg_away", { n: conf.shared.postgres_pending ?? 0 }));
  }
  return parts.length ? t("dash.team_mode", { parts: parts.join(t("dash.sep")) }) : null;
}

export function dashboard(): HTMLElement[] {
  const conf = state.conf;
  const s = summarise(state.keys);
  const o = overall(s, conf?.paused ?? false);
  const r = rates(state.requests, Date.now());
  const out: HTMLElement[] = [
    h("h1", {}, t("dash.title")),
    h(
      "section",
      { class: `summary ${o}`, "aria-label": t("dash.summary") },
      h(
        "div",
        { class: "stat" },
        h("b", { id: "healthy-count" }, `${s.healthy}/${s.total}`),
        t("dash.keys_healthy"),
      ),
      h("div", { class: "stat" }, h("b", {}, s.cooling), t("dash.cooling")),
      h("div", { class: "stat" }, h("b", {}, s.dead), t("dash.dead")),
      h(
        "a",
        {
          class: "stat",
          href: `#requests?since_ms=${Date.now() - 5 * 60_000}`,
          title: t("dash.last5_title"),
        },
        h("b", { id: "req-rate" }, r.perMin.toFixed(1)),
        t("dash.per_min"),
      ),
      h(
        "a",
        {
          class: "stat",
          href: `#requests?failed=1&since_ms=${Date.now() - 5 * 60_000}`,
          title: t("dash.failed5_title"),
        },
        h("b", { id: "err-rate" }, percent(Math.round(r.errorRate * r.n), r.n)),
        t("dash.errors5"),
      ),
      conf?.paused ? h("div", { class: "stat paused" }, t("dash.paused")) : null,
    ),
  ];
  out.push(charts());
  const strips = healthStrips();
  if (strips) out.push(strips);
  const away = sharedAway(conf);
  if (away) out.push(h("p", { class: "shared-away", role: "status", id: "shared-away" }, away));
  if (!conf || conf.providers.length === 0) {
    out.push(
      h(
        "section",
        { class: "empty" },
        h("h2", {}, t("dash.no_providers")),
        h(
          "p",
          {},
          t("dash.add_under"),
          h("a", { href: "#keys" }, t("nav.keys")),
          t("dash.then_point"),
          h("a", { href: "#setup" }, t("nav.setup")),
          t("dash.then_end"),
        ),
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
        h(
          "h2",
          {},
          p.name,
          " ",
          h("small", {}, p.kind),
          p.enabled ? null : h("span", { class: "badge disabled" }, t("dash.provider_disabled")),
        ),
        keys.length
          ? keyTable(keys, true)
          : h(
              "p",
              { class: "empty" },
              t("dash.no_keys_under"),
              h("a", { href: "#keys" }, t("nav.keys")),
              t("dash.no_keys_end"),
            ),
      ),
    );
  }
  return out;
}

/** When each key was out of rotation in the last 24 hours, and why (on hover). */
function healthStrips(): HTMLElement | null {
  const hist = state.history;
  if (!hist || state.keys.length === 0) return null;
  const span = Math.max(1, hist.now_ms - hist.since_ms);
  const W = 600;
  const rows = state.keys.map((k) => {
    const strip = hist.keys.find((x) => x.provider === k.provider && x.key_id === k.key_id);
    const svg = s("svg", {
      viewBox: `0 0 ${W} 10`,
      preserveAspectRatio: "none",
      class: "strip",
      role: "img",
      "aria-label": t("dash.strip_label", {
        key: `${k.provider}/${k.key_id}`,
        n: strip?.segments.length ?? 0,
      }),
    });
    svg.append(s("rect", { x: 0, y: 0, width: W, height: 10, class: "strip-ok" }));
    for (const seg of strip?.segments ?? []) {
      const x = ((seg.from_ms - hist.since_ms) / span) * W;
      const w = Math.max(2, ((seg.to_ms - seg.from_ms) / span) * W);
      const when = `${new Date(seg.from_ms).toLocaleTimeString(lang())}–${new Date(seg.to_ms).toLocaleTimeString(lang())}`;
      const q = new URLSearchParams({
        provider: k.provider,
        key: k.key_id,
        since_ms: String(seg.from_ms),
        until_ms: String(seg.to_ms),
      });
      const title = `${statusText(seg.status)}${seg.reason ? ` (${reasonText(seg.reason)})` : ""}, ${when}`;
      svg.append(
        s(
          "a",
          { href: `#requests?${q.toString()}` },
          s(
            "rect",
            { x, y: 0, width: w, height: 10, class: `strip-seg ${seg.status}`, "data-status": seg.status },
            s("title", {}, document.createTextNode(title)),
          ),
        ),
      );
    }
    return h(
      "div",
      { class: "strip-row", "data-key": `${k.provider}/${k.key_id}` },
      h("code", {}, `${k.provider}/${k.key_id}`),
      svg,
    );
  });
  return h(
    "section",
    { class: "strips" },
    h("h2", {}, t("dash.strips_title"), h("small", {}, t("dash.strip_hover"))),
    rows,
    h(
      "div",
      { class: "chart-times muted" },
      h(
        "span",
        {},
        new Date(hist.since_ms).toLocaleString(lang(), {
          month: "short",
          day: "numeric",
          hour: "2-digit",
          minute: "2-digit",
        }),
      ),
      h("span", {}, t("dash.now")),
    ),
  );
}

/** The dashboard chart's period (kept while the console is open). */
let dashSpan: "1h" | "24h" = "1h";

/** Requests by outcome over the last hour or day, and today's spend against a daily budget. */
function charts(): HTMLElement {
  const day = dashSpan === "24h";
  const hour = day ? state.day : state.hour;
  const today = state.month?.buckets[state.month.buckets.length - 1];
  const budget = state.allBudget ? budgetUse(state.allBudget) : null;
  return h(
    "section",
    { class: "dash-charts" },
    h(
      "div",
      { class: "dash-chart" },
      h(
        "nav",
        { class: "span-picker", "aria-label": t("dash.period_picker") },
        (["1h", "24h"] as const).map((sp) =>
          h(
            "a",
            {
              href: "#dashboard",
              "aria-current": sp === dashSpan ? "true" : undefined,
              "data-span": sp,
              onclick: (e: Event) => {
                e.preventDefault();
                dashSpan = sp;
                document.dispatchEvent(new Event("fluxgate:redraw"));
              },
            },
            sp === "1h" ? t("dash.last_hour") : t("dash.last_24h"),
          ),
        ),
      ),
      hour
        ? barChart(
            day ? t("dash.req_24h") : t("dash.req_hour"),
            hour.buckets,
            hour.bucket_ms,
            REQUEST_PARTS,
            countText,
            (b) => bucketLink(b, hour.bucket_ms),
          )
        : h("p", { class: "muted" }, t("common.loading")),
    ),
    h(
      "div",
      { class: "stat spend-today" },
      h("b", { id: "spend-today" }, today ? usd(today.cost_usd) : "–"),
      t("dash.spent_today"),
      budget
        ? h(
            "div",
            { class: "budget-line" },
            bar(
              budget.ratio >= 1 ? "over" : budget.ratio >= 0.8 ? "warn" : "req",
              Math.min(100, Math.round(budget.ratio * 100)),
            ),
            ` ${t("dash.daily_budget", { text: budget.text })}`,
          )
        : h("div", { class: "muted" }, t("dash.no_daily_budget")),
      h("a", { href: "#usage?span=30d" }, t("nav.usage")),
    ),
  );
}

export async function testKey(provider: string, key: string): Promise<void> {
  try {
    const r = await post<{ ok: boolean; ms: number; status?: number; message?: string }>(
      `keys/${seg(provider)}/${seg(key)}/test`,
    );
    if (r.ok) notice(t("dash.test_ok", { key: `${provider}/${key}`, ms: r.ms }));
    else
      showError(
        t("dash.test_failed", {
          key: `${provider}/${key}`,
          http: r.status ? ` (HTTP ${r.status})` : "",
          message: r.message ?? "",
        }),
      );
    await refresh();
  } catch (e) {
    showError(e);
  }
}
