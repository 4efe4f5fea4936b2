// What every view shares: the admin API's shapes, the loaded state, the banner, actions
// that refresh after they act, and small widgets.

import { ApiError, get } from "./api";
import { clear, h } from "./dom";
import { t } from "./i18n";
import { BudgetPeriod, KeyHealth, statusText } from "./format";
import type { Bucket, KeyStrip } from "./generated/api";
import type { RequestRecord } from "./generated/api";

export interface KeyConf {
  id: string;
  secret: string;
  enabled: boolean;
}
export interface ProviderConf {
  name: string;
  kind: string;
  base_url: string;
  enabled: boolean;
  models: string[];
  keys: KeyConf[];
}
export interface RouteConf {
  name: string;
  targets: string[];
  strategy: string;
  capability: string[] | null;
}
export interface Conf {
  config_file: string | null;
  editable: boolean;
  from_environment: boolean;
  data_dir: string;
  listen: string;
  base_url: string;
  paused: boolean;
  /** Team mode: the Redis this replica shares health and limits through, and whether it answers. */
  shared: {
    redis: string | null;
    up: boolean | null;
    postgres: string | null;
    postgres_up: boolean | null;
    postgres_pending: number | null;
  };
  providers: ProviderConf[];
  routes: RouteConf[];
  strategies: string[];
  /** The model ids the built-in catalogue knows (prices, capabilities). */
  catalogue: string[];
  kinds: string[];
  clients: { id: string; title: string }[];
}
/** One request as `/admin/api/requests` lists it. */
export type RequestRow = RequestRecord;

/** One key's last 24 hours, as `/admin/api/usage` groups it. */
export interface KeyUsage {
  requests: number;
  errors: number;
  cost_usd: number;
  last_ms: number | null;
}

export const state = {
  keys: [] as KeyHealth[],
  conf: null as Conf | null,
  requests: [] as RequestRow[],
  /** `provider/key` → its last 24 hours (refreshed with the request rates). */
  keyUsage: new Map<string, KeyUsage>(),
  /** The dashboard's charts: the last hour in minutes, and the last 30 days (today's spend). */
  hour: null as DashSeries | null,
  day: null as DashSeries | null,
  month: null as DashSeries | null,
  /** Today's use of a daily budget on all traffic, when there is one. */
  allBudget: null as BudgetPeriod | null,
  /** Each key's stretches out of rotation in the last 24 hours (the health strip). */
  history: null as KeyHistory | null,
};

/** `/admin/api/keys/history`. */
export interface KeyHistory {
  since_ms: number;
  now_ms: number;
  keys: KeyStrip[];
}

/** A series as `/admin/api/usage/series` answers it. */
export interface DashSeries {
  bucket_ms: number;
  buckets: Bucket[];
}

export const main = document.getElementById("main") as HTMLElement;
export const banner = document.getElementById("banner") as HTMLElement;
export const live = document.getElementById("live") as HTMLElement;

/** Set by main.ts: redraws the current view. */
let rerender: () => void = () => undefined;
export function onRender(f: () => void): void {
  rerender = f;
}

export function showError(e: unknown): void {
  const msg = e instanceof Error ? e.message : String(e);
  banner.hidden = false;
  banner.className = "";
  clear(
    banner,
    h("span", {}, msg),
    h("button", { type: "button", onclick: () => (banner.hidden = true) }, t("common.dismiss")),
  );
}

export function notice(msg: string): void {
  banner.hidden = false;
  banner.className = "ok";
  clear(
    banner,
    h("span", {}, msg),
    h("button", { type: "button", onclick: () => (banner.hidden = true) }, t("common.dismiss")),
  );
  const shown = banner.firstChild;
  // Good news fades after a while; errors stay until dismissed.
  setTimeout(() => {
    if (banner.className === "ok" && banner.firstChild === shown) banner.hidden = true;
  }, 8000);
}

export async function act(label: string, f: () => Promise<unknown>): Promise<void> {
  try {
    await f();
    await refresh();
  } catch (e) {
    showError(e instanceof ApiError ? `${label}: ${e.message}` : e);
  }
}

/**
 * Runs a form's action where the user is looking: the submit button is busy while it runs; an
 * error is shown in the form itself (role=alert) with every field kept as typed; on success the
 * view refreshes. Returns whether it succeeded.
 */
export async function formAct(form: HTMLElement, f: () => Promise<unknown>): Promise<boolean> {
  const button = form.querySelector<HTMLButtonElement>("button[type=submit]");
  let msg = form.querySelector<HTMLElement>(".form-msg");
  if (!msg) {
    msg = h("p", { class: "form-msg", role: "alert" });
    form.append(msg);
  }
  msg.className = "form-msg";
  msg.textContent = "";
  if (button) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
  }
  try {
    await f();
  } catch (e) {
    msg.className = "form-msg error";
    msg.textContent = e instanceof Error ? e.message : String(e);
    msg.scrollIntoView({ block: "nearest" });
    return false;
  } finally {
    if (button) {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }
  try {
    await refresh();
  } catch (e) {
    showError(e);
  }
  return true;
}

export async function refresh(): Promise<void> {
  const [keys, conf] = await Promise.all([get<{ keys: KeyHealth[] }>("keys"), get<Conf>("config")]);
  state.keys = keys.keys;
  state.conf = conf;
  rerender();
}

export function badge(status: string): HTMLElement {
  return h("span", { class: `badge ${status}`, "data-status": status }, statusText(status));
}

export async function copy(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    notice(t("common.copied"));
  } catch {
    showError(t("common.no_clipboard"));
  }
}

// Widths are set through the CSSOM: the CSP allows no inline style attributes.
export function bar(kind: string, width: number): HTMLElement {
  const el = h("span", { class: `bar ${kind}` });
  el.style.width = `${width}%`;
  return el;
}
