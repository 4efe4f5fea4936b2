// Dashboard: every provider's keys with state, reason, last status and a live countdown.

import { post, seg } from "../api";
import { h } from "../dom";
import {
  balanceText,
  countdown,
  countdownLabel,
  KeyHealth,
  overall,
  percent,
  rates,
  reasonText,
  summarise,
} from "../format";
import { state, showError, notice, act, refresh, badge } from "../shell";

export function keyRow(k: KeyHealth, actions: boolean): HTMLElement {
  const label = countdownLabel(k.status);
  return h(
    "tr",
    { "data-key": `${k.provider}/${k.key_id}` },
    h(
      "td",
      {},
      h("code", {}, k.key_id),
      k.proxy
        ? h(
            "div",
            { class: "muted via", title: "Its requests go through this outbound proxy" },
            `via ${k.proxy}`,
          )
        : null,
      k.balance
        ? h(
            "div",
            {
              class: k.balance.low ? "warn balance" : "muted balance",
              "data-balance": k.balance.remaining ?? "",
              title: k.balance.low
                ? `Below the provider's low_balance (${k.balance.threshold ?? ""})${k.balance.out_of_rotation ? "; out of rotation until topped up" : ""}`
                : (k.balance.error ?? "Read from the vendor's balance endpoint"),
            },
            balanceText(k.balance) + (k.balance.out_of_rotation ? " · out of rotation" : ""),
          )
        : null,
    ),
    h("td", {}, badge(k.status)),
    h(
      "td",
      {},
      reasonText(k.reason) ||
        (k.secret_error
          ? "secret unreadable"
          : k.proxy_error
            ? h("span", { class: "warn", "data-proxy-error": "" }, "proxy failing")
            : ""),
    ),
    h("td", {}, k.last_status ?? ""),
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
    h("td", { class: "msg" }, k.secret_error ?? k.proxy_error ?? k.last_message ?? ""),
    actions
      ? h(
          "td",
          { class: "actions" },
          h("button", { type: "button", onclick: () => testKey(k.provider, k.key_id) }, "Test"),
          k.balance
            ? h(
                "button",
                {
                  type: "button",
                  title: "Read this key's balance from its vendor now (at most once per 30 s)",
                  onclick: () =>
                    act("Check balance", () => post(`keys/${seg(k.provider)}/${seg(k.key_id)}/balance`)),
                },
                "Balance",
              )
            : null,
          k.status !== "healthy" && k.status !== "disabled"
            ? h(
                "button",
                {
                  type: "button",
                  onclick: () => act("Revive", () => post(`keys/${seg(k.provider)}/${seg(k.key_id)}/revive`)),
                },
                "Revive",
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
        ["Key", "State", "Reason", "Last status", "Recovery", "Last message", actions ? "" : null]
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
    parts.push("Redis does not answer: this replica runs on its own key health and limits until it does");
  }
  if (conf.shared.postgres !== null && conf.shared.postgres_up === false) {
    parts.push(
      `PostgreSQL does not answer: ${conf.shared.postgres_pending ?? 0} request records wait in memory, and usage shows this replica's own`,
    );
  }
  return parts.length ? `Team mode — ${parts.join("; ")}.` : null;
}

export function dashboard(): HTMLElement[] {
  const conf = state.conf;
  const s = summarise(state.keys);
  const o = overall(s, conf?.paused ?? false);
  const r = rates(state.requests, Date.now());
  const out: HTMLElement[] = [
    h("h1", {}, "Dashboard"),
    h(
      "section",
      { class: `summary ${o}`, "aria-label": "Summary" },
      h(
        "div",
        { class: "stat" },
        h("b", { id: "healthy-count" }, `${s.healthy}/${s.total}`),
        " keys healthy",
      ),
      h("div", { class: "stat" }, h("b", {}, s.cooling), " cooling"),
      h("div", { class: "stat" }, h("b", {}, s.dead), " dead"),
      h("div", { class: "stat" }, h("b", { id: "req-rate" }, r.perMin.toFixed(1)), " requests/min"),
      h(
        "div",
        { class: "stat" },
        h("b", { id: "err-rate" }, percent(Math.round(r.errorRate * r.n), r.n)),
        " errors (5 min)",
      ),
      conf?.paused ? h("div", { class: "stat paused" }, "Routing is paused") : null,
    ),
  ];
  const away = sharedAway(conf);
  if (away) out.push(h("p", { class: "shared-away", role: "status", id: "shared-away" }, away));
  if (!conf || conf.providers.length === 0) {
    out.push(
      h(
        "section",
        { class: "empty" },
        h("h2", {}, "No providers yet"),
        h(
          "p",
          {},
          "Add a provider and a key under ",
          h("a", { href: "#keys" }, "Providers & keys"),
          ", then point a tool at Fluxgate from ",
          h("a", { href: "#setup" }, "Client setup"),
          ".",
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
          p.enabled ? null : h("span", { class: "badge disabled" }, "provider disabled"),
        ),
        keys.length
          ? keyTable(keys, true)
          : h(
              "p",
              { class: "empty" },
              "No keys. Add one under ",
              h("a", { href: "#keys" }, "Providers & keys"),
              ".",
            ),
      ),
    );
  }
  return out;
}

export async function testKey(provider: string, key: string): Promise<void> {
  try {
    const r = await post<{ ok: boolean; ms: number; status?: number; message?: string }>(
      `keys/${seg(provider)}/${seg(key)}/test`,
    );
    if (r.ok) notice(`${provider}/${key} works (${r.ms} ms).`);
    else
      showError(
        `${provider}/${key} failed its test${r.status ? ` (HTTP ${r.status})` : ""}: ${r.message ?? ""}`,
      );
    await refresh();
  } catch (e) {
    showError(e);
  }
}
