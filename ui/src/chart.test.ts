import { describe, expect, it } from "vitest";
import { bucketLink, niceMax } from "./chart";

describe("charts", () => {
  it("rounds the scale up to 1, 2 or 5 times a power of ten", () => {
    expect(niceMax(0)).toBe(1);
    expect(niceMax(7)).toBe(10);
    expect(niceMax(13)).toBe(20);
    expect(niceMax(0.0031)).toBeCloseTo(0.005);
    expect(niceMax(500)).toBe(500);
  });
  it("links a bar to the inspector for its time", () => {
    const b = { t_ms: 1000, ok: 1, failed: 0, tokens_in: 0, tokens_out: 0, cost_usd: 0 };
    expect(bucketLink(b, 60_000)).toBe("#requests?since_ms=1000&until_ms=61000");
  });
});
