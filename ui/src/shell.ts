// What every view shares: the admin API's shapes, the loaded state, the banner, actions
// that refresh after they act, and small widgets.

import { ApiError, get } from "./api";
import { clear, h } from "./dom";
import { KeyHealth } from "./format";
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
  kinds: string[];
  clients: { id: string; title: string }[];
}
/** One request as `/admin/api/requests` lists it. */
export type RequestRow = RequestRecord;

export const state = {
  keys: [] as KeyHealth[],
  conf: null as Conf | null,
  requests: [] as RequestRow[],
};

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
    h("button", { type: "button", onclick: () => (banner.hidden = true) }, "Dismiss"),
  );
}

export function notice(msg: string): void {
  banner.hidden = false;
  banner.className = "ok";
  clear(
    banner,
    h("span", {}, msg),
    h("button", { type: "button", onclick: () => (banner.hidden = true) }, "Dismiss"),
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

export async function refresh(): Promise<void> {
  const [keys, conf] = await Promise.all([get<{ keys: KeyHealth[] }>("keys"), get<Conf>("config")]);
  state.keys = keys.keys;
  state.conf = conf;
  rerender();
}

export function badge(status: string): HTMLElement {
  return h("span", { class: `badge ${status}`, "data-status": status }, status);
}

export async function copy(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    notice("Copied.");
  } catch {
    showError("The clipboard is not available here; select the text and copy it.");
  }
}

// Widths are set through the CSSOM: the CSP allows no inline style attributes.
export function bar(kind: string, width: number): HTMLElement {
  const el = h("span", { class: `bar ${kind}` });
  el.style.width = `${width}%`;
  return el;
}
