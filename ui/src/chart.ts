// Bar charts of time series (the dashboard's and the usage page's), drawn as SVG with no
// library: bars start at zero so they compare honestly, the scale is stated once (its top),
// time is labelled at the ends and the middle only (labels never overlap), each bar says its
// numbers on hover and opens the request inspector for its time when clicked.

import type { Bucket } from "./generated/api";
import { h, s } from "./dom";
import { compact, usd } from "./format";
import { Key, lang, t } from "./i18n";

export type { Bucket };

/** One stacked part of a bar: its value in a bucket, its class (colour) and its name. */
export interface Part {
  name: string;
  cls: string;
  value: (b: Bucket) => number;
}

/** A round top for the scale: 1, 2 or 5 times a power of ten, at least `max`. */
export function niceMax(max: number): number {
  if (max <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(max)));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

/** A bucket's start as a label: minutes and hours within a day, the date beyond. */
export function timeLabel(tMs: number, bucketMs: number): string {
  const d = new Date(tMs);
  if (bucketMs >= 86_400_000) return d.toLocaleDateString(lang(), { month: "short", day: "numeric" });
  if (bucketMs >= 6 * 3_600_000)
    return `${d.toLocaleDateString(lang(), { month: "short", day: "numeric" })} ${String(d.getHours()).padStart(2, "0")}:00`;
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

const W = 600;
const H = 120;

/**
 * A stacked bar chart of `buckets`. `format` writes a value (the scale and the tooltips);
 * `link` gives the address a bar opens (the inspector filtered to its time), if any.
 */
export function barChart(
  title: string,
  buckets: Bucket[],
  bucketMs: number,
  parts: Part[],
  format: (v: number) => string,
  link?: (b: Bucket) => string,
): HTMLElement {
  const totals = buckets.map((b) => parts.reduce((sum, p) => sum + p.value(b), 0));
  const top = niceMax(Math.max(0, ...totals));
  const slot = W / Math.max(1, buckets.length);
  const gap = Math.min(2, slot / 4);
  const svg = s("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "chart-svg",
    role: "img",
    "aria-label": t("chart.in_all", { title, total: format(totals.reduce((a, b) => a + b, 0)) }),
    preserveAspectRatio: "none",
  });
  svg.append(s("line", { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, class: "axis" }));
  buckets.forEach((b, i) => {
    let y = H;
    const group = s("g", { class: "bar-group" });
    const words = parts.map((p) => `${format(p.value(b))} ${p.name}`).join(", ");
    group.append(s("title", {}, document.createTextNode(`${timeLabel(b.t_ms, bucketMs)}: ${words}`)));
    // The whole slot takes the hover and the click, however short the bar.
    group.append(s("rect", { x: i * slot, y: 0, width: slot, height: H, class: "hit" }));
    for (const p of parts) {
      const v = p.value(b);
      if (v <= 0) continue;
      const height = Math.max(1, (v / top) * H);
      y -= height;
      group.append(s("rect", { x: i * slot + gap / 2, y, width: slot - gap, height, class: `seg ${p.cls}` }));
    }
    if (link && totals[i] > 0) {
      const a = s("a", { href: link(b) }, group);
      svg.append(a);
    } else svg.append(group);
  });
  const mid = buckets[Math.floor(buckets.length / 2)];
  const first = buckets[0];
  const last = buckets[buckets.length - 1];
  return h(
    "figure",
    { class: "chart-figure" },
    h(
      "figcaption",
      {},
      h("strong", {}, title),
      " ",
      parts.length > 1 ? parts.map((p) => h("span", { class: `legend ${p.cls}` }, p.name)) : null,
      h("span", { class: "muted scale" }, t("chart.scale", { top: format(top) })),
    ),
    svg,
    first && last
      ? h(
          "div",
          { class: "chart-times muted" },
          h("span", {}, timeLabel(first.t_ms, bucketMs)),
          h("span", {}, mid ? timeLabel(mid.t_ms, bucketMs) : ""),
          h("span", {}, t("chart.now", { time: timeLabel(last.t_ms, bucketMs) })),
        )
      : null,
  );
}

/** A chart part whose legend name is read from the catalogue when drawn (so it follows a
 * language switch). */
const part = (name: Key, cls: string, value: (b: Bucket) => number): Part => ({
  get name() {
    return t(name);
  },
  cls,
  value,
});

/** The parts of a requests chart: those that succeeded and those that failed. */
export const REQUEST_PARTS: Part[] = [
  part("chart.ok", "ok", (b) => b.ok),
  part("chart.failed", "failed", (b) => b.failed),
];

export const TOKEN_PARTS: Part[] = [
  part("chart.in", "tok-in", (b) => b.tokens_in),
  part("chart.out", "tok-out", (b) => b.tokens_out),
];

export const SPEND_PARTS: Part[] = [part("chart.spend", "spend", (b) => b.cost_usd)];

export const countText = (v: number) => compact(Math.round(v));
export const spendText = (v: number) => usd(v);

/** The inspector's address for the requests of one bucket (and `extra` filters). */
export function bucketLink(b: Bucket, bucketMs: number, extra = ""): string {
  return `#requests?since_ms=${b.t_ms}&until_ms=${b.t_ms + bucketMs}${extra}`;
}
