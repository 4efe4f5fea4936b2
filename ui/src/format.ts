// Pure helpers: how states, countdowns and numbers read in the console. Tested with Vitest.

// The admin API's shapes come from the Rust types (src/generated/api.ts, checked by a Rust
// test), so the console cannot drift from what the server sends.
import type { KeyBalance, KeyHealth, KeyStatus } from "./generated/api";
export type { KeyBalance, KeyHealth, KeyStatus };

/** A key's credit as one short phrase: `110.00 CNY left`, `usage $3.25 (no limit)`, `checking…`. */
export function balanceText(b: KeyBalance): string {
  if (b.remaining !== null) return `${b.remaining.toFixed(2)} ${b.currency ?? ""} left`.replace("  ", " ");
  if (b.usage !== null) return `${b.usage.toFixed(2)} ${b.currency ?? ""} used, no limit`.replace("  ", " ");
  if (b.error !== null) return "balance unknown";
  return "checking balance…";
}

const REASONS: Record<string, string> = {
  auth_failed: "authentication failed",
  quota_exhausted: "quota used up",
  rate_limited: "rate limited",
  upstream_unavailable: "provider failing",
  request_invalid: "requests rejected",
};

export function reasonText(reason: string | null): string {
  if (!reason) return "";
  return REASONS[reason] ?? reason.replace(/_/g, " ");
}

/** "back in 1 min 05 s" style countdown to `untilMs`, or "" when it has passed or is unknown. */
export function countdown(untilMs: number | null, nowMs: number): string {
  if (untilMs === null) return "";
  const left = Math.ceil((untilMs - nowMs) / 1000);
  if (left <= 0) return "retesting now";
  if (left < 60) return `${left} s`;
  if (left < 3600) {
    const m = Math.floor(left / 60);
    const s = left % 60;
    return `${m} min ${String(s).padStart(2, "0")} s`;
  }
  const h = Math.floor(left / 3600);
  const m = Math.floor((left % 3600) / 60);
  return `${h} h ${String(m).padStart(2, "0")} min`;
}

/** What the countdown counts to, in words, per state. */
export function countdownLabel(status: KeyStatus): string {
  switch (status) {
    case "cooling":
      return "back in";
    case "dead":
    case "probing":
      return "next retest in";
    default:
      return "";
  }
}

export interface Summary {
  total: number;
  healthy: number;
  cooling: number;
  dead: number;
  disabled: number;
}

export function summarise(keys: KeyHealth[]): Summary {
  const s: Summary = { total: 0, healthy: 0, cooling: 0, dead: 0, disabled: 0 };
  for (const k of keys) {
    if (k.status === "disabled") {
      s.disabled++;
      continue;
    }
    s.total++;
    if (k.status === "healthy") s.healthy++;
    else if (k.status === "dead") s.dead++;
    else s.cooling++;
  }
  return s;
}

/** Overall state, as the tray shows it. */
export function overall(s: Summary, paused: boolean): "healthy" | "degraded" | "down" | "paused" {
  if (paused) return "paused";
  if (s.healthy === 0) return "down";
  return s.healthy < s.total ? "degraded" : "healthy";
}

export function compact(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(0)}k`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

export function percent(part: number, whole: number): string {
  if (whole <= 0) return "–";
  return `${((100 * part) / whole).toFixed(part === whole || part === 0 ? 0 : 1)}%`;
}

export function usd(v: number): string {
  if (v === 0) return "$0";
  if (v < 0.01) return `$${v.toFixed(4)}`;
  return `$${v.toFixed(2)}`;
}

/** Request and error rate per minute over the last `windowMs`, from request-log rows. */
export function rates(
  rows: { ts_ms: number; status: number; error_code: string | null }[],
  nowMs: number,
  windowMs = 5 * 60_000,
): { perMin: number; errorRate: number; n: number } {
  const recent = rows.filter((r) => nowMs - r.ts_ms <= windowMs);
  const errors = recent.filter((r) => r.status >= 400 || r.error_code !== null).length;
  return {
    perMin: recent.length / (windowMs / 60_000),
    errorRate: recent.length ? errors / recent.length : 0,
    n: recent.length,
  };
}

/** Parses the route editor's target list: one `provider/model` per line or comma. */
export function parseTargets(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
}

/** Bar widths (0–100) for a chart of values. */
export function bars(values: number[]): number[] {
  const max = Math.max(0, ...values);
  return values.map((v) => (max > 0 ? Math.round((100 * v) / max) : 0));
}

export interface BudgetPeriod {
  usd: number;
  tokens: number;
  limit_usd: number | null;
  limit_tokens: number | null;
  resets_in_secs: number;
}

/** The budget scope as words: `provider deepseek`, `all traffic`. */
export function scopeText(scope: { kind: string; name?: string }): string {
  return scope.kind === "all" ? "all traffic" : `${scope.kind} ${scope.name ?? ""}`.trim();
}

/** The used share (0–1) of a period's tightest limit, and a line saying it, or null without limits. */
export function budgetUse(p: BudgetPeriod): { ratio: number; text: string } | null {
  const parts: { ratio: number; text: string }[] = [];
  if (p.limit_usd !== null && p.limit_usd > 0) {
    parts.push({ ratio: p.usd / p.limit_usd, text: `${usd(p.usd)} of ${usd(p.limit_usd)}` });
  }
  if (p.limit_tokens !== null && p.limit_tokens > 0) {
    parts.push({
      ratio: p.tokens / p.limit_tokens,
      text: `${compact(p.tokens)} of ${compact(p.limit_tokens)} tokens`,
    });
  }
  if (parts.length === 0) return null;
  const ratio = Math.max(...parts.map((x) => x.ratio));
  return { ratio, text: parts.map((x) => x.text).join(", ") };
}
