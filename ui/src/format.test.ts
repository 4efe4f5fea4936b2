import { describe, expect, it } from "vitest";
import {
  balanceText,
  bars,
  compact,
  countdown,
  ago,
  catalogueFor,
  countdownLabel,
  keyNote,
  filterQuery,
  filtersFromHash,
  millis,
  outcomeText,
  KeyHealth,
  overall,
  parseTargets,
  percent,
  rates,
  reasonText,
  summarise,
  usd,
} from "./format";

const key = (status: KeyHealth["status"]): KeyHealth => ({
  provider: "openai",
  key_id: "a",
  status,
  reason: null,
  last_status: null,
  last_message: null,
  last_error_ms: null,
  until_ms: null,
  retry_in_secs: null,
  in_flight: 0,
  secret_error: null,
  proxy: null,
  proxy_error: null,
  balance: null,
});

describe("countdown", () => {
  it("counts seconds, minutes and hours", () => {
    expect(countdown(61_000, 0)).toBe("1 min 01 s");
    expect(countdown(9_001, 0)).toBe("10 s");
    expect(countdown(7_260_000, 0)).toBe("2 h 01 min");
    expect(countdown(1_000, 5_000)).toBe("retesting now");
    expect(countdown(null, 0)).toBe("");
  });
  it("labels what it counts to", () => {
    expect(countdownLabel("cooling")).toBe("back in");
    expect(countdownLabel("dead")).toBe("next retest in");
    expect(countdownLabel("healthy")).toBe("");
  });
});

describe("summaries", () => {
  it("counts states and leaves disabled keys out", () => {
    const s = summarise([key("healthy"), key("cooling"), key("probing"), key("dead"), key("disabled")]);
    expect(s).toEqual({ total: 4, healthy: 1, cooling: 2, dead: 1, disabled: 1 });
    expect(overall(s, false)).toBe("degraded");
    expect(overall(s, true)).toBe("paused");
    expect(overall(summarise([key("dead")]), false)).toBe("down");
    expect(overall(summarise([key("healthy")]), false)).toBe("healthy");
    expect(overall(summarise([]), false)).toBe("down");
  });
  it("words reasons", () => {
    expect(reasonText("rate_limited")).toBe("rate limited");
    expect(reasonText("something_new")).toBe("something new");
    expect(reasonText(null)).toBe("");
  });
});

describe("numbers", () => {
  it("formats", () => {
    expect(compact(999)).toBe("999");
    expect(compact(1234)).toBe("1.2k");
    expect(compact(2_500_000)).toBe("2.5M");
    expect(percent(1, 3)).toBe("33.3%");
    expect(percent(0, 0)).toBe("–");
    expect(usd(0.004)).toBe("$0.0040");
    expect(usd(1.5)).toBe("$1.50");
    expect(bars([1, 2, 4])).toEqual([25, 50, 100]);
    expect(bars([0, 0])).toEqual([0, 0]);
  });
  it("computes request and error rates over the window", () => {
    const now = 10 * 60_000;
    const rows = [
      { ts_ms: now - 1000, status: 200, error_code: null },
      { ts_ms: now - 2000, status: 503, error_code: "all_keys_cooling" },
      { ts_ms: now - 3000, status: 200, error_code: "stream_interrupted" },
      { ts_ms: now - 6 * 60_000, status: 200, error_code: null },
    ];
    const r = rates(rows, now);
    expect(r.n).toBe(3);
    expect(r.perMin).toBeCloseTo(0.6);
    expect(r.errorRate).toBeCloseTo(2 / 3);
  });
  it("parses targets by line or comma", () => {
    expect(parseTargets("a/b\n c/d ,e/f,\n")).toEqual(["a/b", "c/d", "e/f"]);
  });
});

import { budgetUse, scopeText } from "./format";

describe("budgets", () => {
  it("reads the tightest limit", () => {
    const u = budgetUse({ usd: 0.84, tokens: 9000, limit_usd: 1, limit_tokens: 10000, resets_in_secs: 10 });
    expect(u?.ratio).toBeCloseTo(0.9);
    expect(u?.text).toBe("$0.84 of $1.00, 9.0k of 10k tokens");
    expect(
      budgetUse({ usd: 1, tokens: 1, limit_usd: null, limit_tokens: null, resets_in_secs: 1 }),
    ).toBeNull();
    expect(scopeText({ kind: "provider", name: "deepseek" })).toBe("provider deepseek");
    expect(scopeText({ kind: "all" })).toBe("all traffic");
  });
});

describe("balanceText", () => {
  const b = {
    source: "deepseek" as const,
    remaining: 110,
    currency: "CNY",
    limit: null,
    usage: null,
    checked_ms: 1,
    error: null,
    threshold: null,
    low: false,
    out_of_rotation: false,
  };
  it("says what is left, what is used, or that it is not known yet", () => {
    expect(balanceText(b)).toBe("110.00 CNY left");
    expect(balanceText({ ...b, remaining: null, usage: 3.25, currency: "USD" })).toBe(
      "3.25 USD used, no limit",
    );
    expect(balanceText({ ...b, remaining: null, checked_ms: null })).toBe("checking balance…");
    expect(balanceText({ ...b, remaining: null, checked_ms: null, error: "timed out" })).toBe(
      "balance unknown",
    );
  });
});

describe("inspector filters", () => {
  it("reads the hash and writes back only what is set", () => {
    const f = filtersFromHash("#requests?failed=1&route=fast&colour=red&retried=0");
    expect(f.failed).toBe(true);
    expect(f.retried).toBe(false);
    expect(f.route).toBe("fast");
    expect(filterQuery(f)).toBe("failed=1&route=fast");
    expect(filterQuery(filtersFromHash("#requests"), { limit: 5 })).toBe("limit=5");
    expect(filterQuery({ ...f, key: "a b&c" })).toBe("failed=1&route=fast&key=a+b%26c");
  });
  it("says how an attempt ended and how long it took", () => {
    expect(outcomeText("proxy_failed")).toBe("its proxy failed");
    expect(outcomeText("pending")).toBe("in progress");
    expect(millis(850)).toBe("850 ms");
    expect(millis(1234)).toBe("1.2 s");
    expect(millis(null)).toBe("–");
  });
});

describe("key notes", () => {
  const base: KeyHealth = {
    ...key("healthy"),
    provider: "oa",
    key_id: "work",
    last_status: 429,
    last_message: "rate limited upstream",
    last_error_ms: 1_000_000,
  };
  it("shows a healthy or disabled key's last failure as history, with when", () => {
    const n = keyNote(base, 1_000_000 + 3 * 60_000);
    expect(n).toEqual({ reason: "", message: "last error 3 min ago: rate limited upstream", history: true });
    expect(keyNote({ ...base, status: "disabled", last_error_ms: null }, 0).message).toBe(
      "last error: rate limited upstream",
    );
    expect(keyNote({ ...base, last_message: null }, 0)).toEqual({ reason: "", message: "", history: false });
  });
  it("says why a key is out of rotation", () => {
    const n = keyNote({ ...base, status: "cooling", reason: "rate_limited" }, 0);
    expect(n).toEqual({ reason: "rate limited", message: "rate limited upstream", history: false });
    expect(keyNote({ ...base, secret_error: "locked" }, 0).reason).toBe("secret unreadable");
  });
  it("reads times ago", () => {
    expect(ago(0, 30_000)).toBe("just now");
    expect(ago(0, 2 * 3_600_000)).toBe("2 h ago");
    expect(ago(0, 3 * 86_400_000)).toBe("3 d ago");
  });
});

describe("catalogue picks", () => {
  const cat = [
    "gpt-4o",
    "gpt-4o-2024-08-06",
    "claude-sonnet-4-5",
    "claude-sonnet-4-5-20250929",
    "deepseek-chat",
    "gemini-2.5-pro",
    "mistral-large-latest",
  ];
  it("offers each provider its vendor's models, not dated snapshots", () => {
    expect(catalogueFor("openai", "", cat)).toEqual(["gpt-4o"]);
    expect(catalogueFor("anthropic", "", cat)).toEqual(["claude-sonnet-4-5"]);
    expect(catalogueFor("openai-compatible", "https://api.deepseek.com/v1", cat)).toEqual(["deepseek-chat"]);
    expect(catalogueFor("openai-compatible", "http://127.0.0.1:11434/v1", cat)).toEqual([]);
  });
});
