// The console's words in English and Simplified Chinese. The catalogues are the same files the
// router's tray, notifications and CLI read (crates/fluxgate-core/i18n/*.json): one per
// language, every key in each (checked by the type below and by tests on both sides).
//
// The language: the one picked in the console's header (kept in this browser), else the
// browser's (in the desktop app, the OS's) preferred languages, else English.

import en from "../../crates/fluxgate-core/i18n/en.json";
import zhCN from "../../crates/fluxgate-core/i18n/zh-CN.json";

export type Key = keyof typeof en;
export type Lang = "en" | "zh-CN";

/** Every catalogue must have every English key: a missing one fails `tsc`. */
const CATALOGUES: Record<Lang, Record<Key, string>> = { en, "zh-CN": zhCN };

export const LANGS: { id: Lang; name: string }[] = [
  { id: "en", name: "English" },
  { id: "zh-CN", name: "简体中文" },
];

const STORE = "fluxgate.lang";

/** Reads a language tag (`zh-CN`, `zh-Hans-CN`, `zh_TW`, `en-GB`): any Chinese is zh-CN. */
export function parseLang(tag: string | null | undefined): Lang | null {
  if (!tag) return null;
  const base = tag
    .trim()
    .split(/[-_.@]/)[0]
    .toLowerCase();
  if (!base) return null;
  return base === "zh" ? "zh-CN" : "en";
}

/** The language to start in: the stored choice, else the first preferred language. */
export function detectLang(stored: string | null, preferred: readonly string[]): Lang {
  const chosen = stored === "en" || stored === "zh-CN" ? stored : null;
  return chosen ?? parseLang(preferred[0]) ?? "en";
}

function initial(): Lang {
  let stored: string | null = null;
  try {
    stored = localStorage.getItem(STORE);
  } catch {
    stored = null;
  }
  const nav = typeof navigator === "undefined" ? [] : (navigator.languages ?? [navigator.language]);
  return detectLang(stored, nav);
}

let current: Lang = initial();

export function lang(): Lang {
  return current;
}

/** Switches the language and remembers it in this browser; the caller redraws. */
export function setLang(l: Lang): void {
  current = l;
  try {
    localStorage.setItem(STORE, l);
  } catch {
    // Private mode: the choice lasts this visit.
  }
  if (typeof document !== "undefined") document.documentElement.lang = l;
}

/** The text under `key` with `{name}` placeholders filled from `vars`. */
export function t(key: Key, vars: Record<string, string | number> = {}): string {
  const text = CATALOGUES[current][key] ?? CATALOGUES.en[key] ?? key;
  return text.replace(/\{([a-z_]+)\}/g, (m, name: string) => (name in vars ? String(vars[name]) : m));
}

/** A counted text: `key_one` when `n` is 1, else `key_other`; `{n}` is filled too. */
export function tn(stem: string, n: number, vars: Record<string, string | number> = {}): string {
  return t(`${stem}_${n === 1 ? "one" : "other"}` as Key, { n, ...vars });
}

/** Formats a number in the console's language (grouping as the language writes it). */
export function num(n: number, digits = 0): string {
  return n.toLocaleString(current, { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** The catalogues, for tests. */
export const catalogues = CATALOGUES;
