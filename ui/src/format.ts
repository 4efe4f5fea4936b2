// Pure helpers: how states, countdowns and numbers read in the console. Tested with Vitest.

// The admin API's shapes come from the Rust types (src/generated/api.ts, checked by a Rust
// test), so the console cannot drift from what the server sends.
import type { KeyBalance, KeyHealth, KeyStatus } from "./generated/api";
export type { KeyBalance, KeyHealth, KeyStatus };
import { Key, t } from "./i18n";

/** A key's credit as one short phrase: `110.00 CNY left`, `usage $3.25 (no limit)`, `checking…`. */
export function balanceText(b: KeyBalance): string {
  const cur = b.currency ?? "";
  if (b.remaining !== null)
    return t("fmt.left", { amount: b.remaining.toFixed(2), cur })
      .replace("  ", " ")
      .trim();
  if (b.usage !== null)
    return t("fmt.used_no_limit", { amount: b.usage.toFixed(2), cur })
      .replace("  ", " ")
      .trim();
  if (b.error !== null) return t("fmt.balance_unknown");
  return t("fmt.balance_checking");
}

const REASONS: Record<string, Key> = {
  auth_failed: "reason.auth_failed",
  quota_exhausted: "reason.quota_exhausted",
  rate_limited: "reason.rate_limited",
  upstream_unavailable: "reason.upstream_unavailable",
  request_invalid: "reason.request_invalid",
};

export function reasonText(reason: string | null): string {
  if (!reason) return "";
  const key = REASONS[reason];
  return key ? t(key) : reason.replace(/_/g, " ");
}

const STATUSES: Record<string, Key> = {
  healthy: "status.healthy",
  cooling: "status.cooling",
  probing: "status.probing",
  dead: "status.dead",
  disabled: "status.disabled",
};

/** A key state in the console's language (unknown ones as sent). */
export function statusText(status: string): string {
  const key = STATUSES[status];
  return key ? t(key) : status;
}

/** "back in 1 min 05 s" style countdown to `untilMs`, or "" when it has passed or is unknown. */
export function countdown(untilMs: number | null, nowMs: number): string {
  if (untilMs === null) return "";
  const left = Math.ceil((untilMs - nowMs) / 1000);
  if (left <= 0) return t("fmt.retesting_now");
  if (left < 60) return t("fmt.secs", { s: left });
  if (left < 3600) {
    const m = Math.floor(left / 60);
    const s = left % 60;
    return t("fmt.min_secs", { m, s: String(s).padStart(2, "0") });
  }
  const h = Math.floor(left / 3600);
  const m = Math.floor((left % 3600) / 60);
  return t("fmt.h_min", { h, m: String(m).padStart(2, "0") });
}

/** What the countdown counts to, in words, per state. */
export function countdownLabel(status: KeyStatus): string {
  switch (status) {
    case "cooling":
      return t("fmt.back_in");
    case "dead":
    case "probing":
      return t("fmt.next_retest_in");
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
  if (scope.kind === "all") return t("fmt.all_traffic");
  const key = (
    { provider: "scope.provider", key: "scope.key", route: "scope.route", client: "scope.client" } as Record<
      string,
      Key
    >
  )[scope.kind];
  return key ? t(key, { name: scope.name ?? "" }).trim() : `${scope.kind} ${scope.name ?? ""}`.trim();
}

/** The used share (0–1) of a period's tightest limit, and a line saying it, or null without limits. */
export function budgetUse(p: BudgetPeriod): { ratio: number; text: string } | null {
  const parts: { ratio: number; text: string }[] = [];
  if (p.limit_usd !== null && p.limit_usd > 0) {
    parts.push({
      ratio: p.usd / p.limit_usd,
      text: t("fmt.of", { spent: usd(p.usd), limit: usd(p.limit_usd) }),
    });
  }
  if (p.limit_tokens !== null && p.limit_tokens > 0) {
    parts.push({
      ratio: p.tokens / p.limit_tokens,
      text: t("fmt.tokens_of", { spent: compact(p.tokens), limit: compact(p.limit_tokens) }),
    });
  }
  if (parts.length === 0) return null;
  const ratio = Math.max(...parts.map((x) => x.ratio));
  return { ratio, text: parts.map((x) => x.text).join(", ") };
}

/** The request inspector's filters, as the URL after `#requests?` and the API take them. */
export interface InspectorFilters {
  failed: boolean;
  retried: boolean;
  route: string;
  provider: string;
  key: string;
  client: string;
  model: string;
  /** A time window (Unix ms, as text; "" for none): a chart's bar opens the inspector on it. */
  since_ms: string;
  until_ms: string;
}

const TEXT_FILTERS = ["route", "provider", "key", "client", "model", "since_ms", "until_ms"] as const;

/** The filters in a location hash such as `#requests?failed=1&route=fast` (unknown ones dropped). */
export function filtersFromHash(hash: string): InspectorFilters {
  const q = new URLSearchParams(hash.includes("?") ? hash.slice(hash.indexOf("?") + 1) : "");
  const yes = (k: string) => q.has(k) && !["0", "false", "no"].includes(q.get(k) ?? "");
  const f: InspectorFilters = {
    failed: yes("failed"),
    retried: yes("retried"),
    route: "",
    provider: "",
    key: "",
    client: "",
    model: "",
    since_ms: "",
    until_ms: "",
  };
  for (const k of TEXT_FILTERS) f[k] = q.get(k) ?? "";
  for (const k of ["since_ms", "until_ms"] as const) if (!/^\d{1,15}$/.test(f[k])) f[k] = "";
  return f;
}

/** The filters as a query string (only those set), with `extra` parameters appended. */
export function filterQuery(f: InspectorFilters, extra: Record<string, string | number> = {}): string {
  const q = new URLSearchParams();
  if (f.failed) q.set("failed", "1");
  if (f.retried) q.set("retried", "1");
  for (const k of TEXT_FILTERS) if (f[k]) q.set(k, f[k]);
  for (const [k, v] of Object.entries(extra)) q.set(k, String(v));
  return q.toString();
}

/** How an attempt ended, in words. */
export function outcomeText(outcome: string): string {
  switch (outcome) {
    case "served":
      return t("outcome.served");
    case "failed":
      return t("outcome.failed");
    case "rejected":
      return t("outcome.rejected");
    case "not_translatable":
      return t("outcome.not_translatable");
    case "proxy_failed":
      return t("outcome.proxy_failed");
    case "broke":
      return t("outcome.broke");
    default:
      return t("outcome.in_progress");
  }
}

/** Milliseconds as "850 ms" or "1.2 s"; "–" for unknown. */
export function millis(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "–";
  return ms < 1000 ? t("fmt.ms", { n: ms }) : t("fmt.s", { n: (ms / 1000).toFixed(1) });
}

/** How long ago `ms` was: "just now", "3 min ago", "2 h ago", "4 d ago". */
export function ago(ms: number, nowMs: number): string {
  const s = Math.max(0, Math.floor((nowMs - ms) / 1000));
  if (s < 60) return t("fmt.just_now");
  if (s < 3600) return t("fmt.min_ago", { n: Math.floor(s / 60) });
  if (s < 86_400) return t("fmt.h_ago", { n: Math.floor(s / 3600) });
  return t("fmt.d_ago", { n: Math.floor(s / 86_400) });
}

/**
 * What a key's reason and message cells say. Out of rotation: why, and what the upstream
 * said. Usable or disabled: no reason (a stale one would say it is broken); its last failure
 * is history, shown muted with when it happened.
 */
export function keyNote(k: KeyHealth, nowMs: number): { reason: string; message: string; history: boolean } {
  if (k.status === "healthy" || k.status === "disabled") {
    const problem = k.secret_error ?? k.proxy_error;
    if (problem)
      return {
        reason: k.secret_error ? t("fmt.secret_unreadable") : t("fmt.proxy_failing"),
        message: problem,
        history: false,
      };
    if (!k.last_message) return { reason: "", message: "", history: false };
    const when = k.last_error_ms === null ? "" : ` ${ago(k.last_error_ms, nowMs)}`;
    return { reason: "", message: t("fmt.last_error", { when, message: k.last_message }), history: true };
  }
  return {
    reason:
      reasonText(k.reason) ||
      (k.secret_error ? t("fmt.secret_unreadable") : k.proxy_error ? t("fmt.proxy_failing") : ""),
    message: k.secret_error ?? k.proxy_error ?? k.last_message ?? "",
    history: false,
  };
}

/**
 * The catalogue's models a provider of `kind` (at `baseUrl`) likely serves, for the route
 * editor's target picker: OpenAI's to `openai`, Anthropic's to `anthropic`, Gemini's to
 * `gemini`, and an OpenAI-compatible vendor's own by its host (DeepSeek, Mistral).
 */
export function catalogueFor(kind: string, baseUrl: string, catalogue: string[]): string[] {
  const host = baseUrl.toLowerCase();
  const prefixes =
    kind === "openai" || kind === "azure-openai"
      ? ["gpt-", "o3", "o4", "text-embedding-"]
      : kind === "anthropic"
        ? ["claude-"]
        : kind === "gemini"
          ? ["gemini-"]
          : host.includes("deepseek")
            ? ["deepseek-"]
            : host.includes("mistral")
              ? ["mistral-", "codestral-"]
              : [];
  return catalogue.filter(
    (id) => prefixes.some((p) => id.startsWith(p)) && !/-\d{4}-\d{2}-\d{2}$|-\d{8}$/.test(id),
  );
}
