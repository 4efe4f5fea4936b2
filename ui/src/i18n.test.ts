import { afterEach, describe, expect, it } from "vitest";
import { catalogues, detectLang, Key, lang, parseLang, setLang, t, tn } from "./i18n";
import { countdown, keyNote, scopeText } from "./format";
import { keyTable, sharedAway } from "./views/dashboard";
import type { KeyHealth } from "./format";

const placeholders = (s: string) => [...s.matchAll(/\{([a-z_]+)\}/g)].map((m) => m[1]).sort();

afterEach(() => setLang("en"));

describe("catalogues", () => {
  it("have the same keys and placeholders in every language", () => {
    const en = catalogues.en;
    for (const [l, cat] of Object.entries(catalogues)) {
      expect(Object.keys(cat).sort(), l).toEqual(Object.keys(en).sort());
      for (const k of Object.keys(en) as Key[]) {
        expect(cat[k].trim().length, `${l} ${k}`).toBeGreaterThan(0);
        expect(placeholders(cat[k]), `${l} ${k}`).toEqual(placeholders(en[k]));
      }
    }
  });
  it("fills placeholders and counted forms", () => {
    expect(t("dash.test_ok", { key: "a/b", ms: 12 })).toBe("a/b works (12 ms).");
    expect(tn("notes.more_changes", 1)).toBe("Fluxgate: 1 more key change");
    expect(tn("notes.more_changes", 2)).toBe("Fluxgate: 2 more key changes");
    setLang("zh-CN");
    expect(t("dash.test_ok", { key: "a/b", ms: 12 })).toBe("a/b 可用（12 毫秒）。");
  });
});

describe("language choice", () => {
  it("maps tags and locales to a catalogue", () => {
    expect(parseLang("zh-CN")).toBe("zh-CN");
    expect(parseLang("zh-Hans-CN")).toBe("zh-CN");
    expect(parseLang("zh_TW")).toBe("zh-CN");
    expect(parseLang("en-GB")).toBe("en");
    expect(parseLang("fr")).toBe("en");
    expect(parseLang("")).toBeNull();
  });
  it("prefers the stored choice, then the browser's first language", () => {
    expect(detectLang(null, ["zh-CN", "en"])).toBe("zh-CN");
    expect(detectLang("en", ["zh-CN"])).toBe("en");
    expect(detectLang("zh-CN", ["en-US"])).toBe("zh-CN");
    expect(detectLang("klingon", ["en-US"])).toBe("en");
    expect(detectLang(null, [])).toBe("en");
  });
  it("remembers a switch and marks the document", () => {
    setLang("zh-CN");
    expect(lang()).toBe("zh-CN");
    expect(localStorage.getItem("fluxgate.lang")).toBe("zh-CN");
    expect(document.documentElement.lang).toBe("zh-CN");
  });
});

describe("views in Chinese", () => {
  const key: KeyHealth = {
    provider: "openai",
    key_id: "work",
    status: "cooling",
    reason: "rate_limited",
    last_status: 429,
    last_message: "slow down",
    last_error_ms: 0,
    until_ms: Date.now() + 65_000,
    retry_in_secs: 65,
    in_flight: 0,
    secret_error: null,
    proxy: null,
    proxy_error: null,
    balance: null,
  };
  it("draw the key table, reasons and countdowns in the chosen language", () => {
    setLang("zh-CN");
    const table = keyTable([key], true);
    const text = table.textContent ?? "";
    for (const word of ["密钥", "状态", "冷却中", "被限流", "恢复倒计时", "测试", "恢复"])
      expect(text).toContain(word);
    expect(text).not.toMatch(/\b(Key|State|Reason|cooling|back in|Test|Revive)\b/);
    expect(countdown(Date.now() + 65_500, Date.now())).toBe("1 分 06 秒");
    expect(keyNote({ ...key, status: "healthy" }, 120_000).message).toBe("上次错误 2 分钟前：slow down");
    expect(scopeText({ kind: "provider", name: "deepseek" })).toBe("服务商 deepseek");
    expect(
      sharedAway({
        shared: { redis: "r", up: false, postgres: null, postgres_up: null, postgres_pending: null },
      } as never),
    ).toContain("Redis 无响应");
  });
});
