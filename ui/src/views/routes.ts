// Routes: edit targets and strategy with a live explain preview of the order.

import { del, post, put, seg } from "../api";
import { clear, h } from "../dom";
import { catalogueFor, parseTargets } from "../format";
import { Conf, RouteConf, state, notice, act, formAct } from "../shell";
import { Key, t } from "../i18n";

export interface PlanReport {
  candidates?: { provider: string; key_id: string; model: string; why?: string }[];
  skipped?: { provider: string; key_id?: string; model?: string; why: string }[];
  [k: string]: unknown;
}

export function planList(plan: PlanReport): HTMLElement {
  const cands = plan.candidates ?? [];
  const skipped = plan.skipped ?? [];
  return h(
    "div",
    { class: "plan" },
    cands.length
      ? h(
          "ol",
          { class: "order" },
          cands.map((c) =>
            h(
              "li",
              {},
              h("code", {}, `${c.provider}/${c.key_id}`),
              ` → ${c.model}`,
              c.why ? h("small", {}, ` (${c.why})`) : null,
            ),
          ),
        )
      : h("p", { class: "warn" }, t("routes.no_candidate")),
    skipped.length
      ? h(
          "ul",
          { class: "skipped" },
          skipped.map((s) =>
            h(
              "li",
              {},
              h("code", {}, `${s.provider}${s.key_id ? "/" + s.key_id : ""}`),
              ` ${t("routes.skipped", { why: s.why })}`,
            ),
          ),
        )
      : null,
  );
}

export function routeEditor(r: RouteConf | null, conf: Conf): HTMLElement {
  const nameIn = h("input", {
    name: "route",
    required: true,
    value: r?.name ?? "",
    placeholder: "claude-sonnet-4-5",
    "aria-label": t("routes.name_label"),
    readonly: r !== null,
  }) as HTMLInputElement;
  const targets = h(
    "textarea",
    {
      name: "targets",
      rows: 3,
      "aria-label": t("routes.targets_label"),
      placeholder: "anthropic/claude-sonnet-4-5\nopenai/gpt-4o",
    },
    (r?.targets ?? []).join("\n"),
  ) as HTMLTextAreaElement;
  const strategy = h(
    "select",
    { name: "strategy", "aria-label": t("routes.strategy") },
    conf.strategies.map((s) =>
      h("option", { value: s, selected: s === (r?.strategy ?? "priority"), title: strategyText(s) }, s),
    ),
  ) as HTMLSelectElement;
  const explained = h("p", { class: "muted strategy-note" }, strategyText(strategy.value));
  strategy.addEventListener("change", () => (explained.textContent = strategyText(strategy.value)));
  const preview = h(
    "div",
    { class: "preview", "aria-live": "polite" },
    h("p", { class: "muted" }, t("routes.edit_hint")),
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  let seq = 0;
  const update = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const name = nameIn.value.trim();
      const list = parseTargets(targets.value);
      if (!name || list.length === 0) return;
      const mine = ++seq;
      try {
        const plan = await post<PlanReport>(`routes/${seg(name)}/preview`, {
          targets: list,
          strategy: strategy.value,
        });
        if (mine === seq) clear(preview, h("h3", {}, t("routes.explain")), planList(plan));
      } catch (e) {
        if (mine === seq)
          clear(preview, h("p", { class: "error" }, e instanceof Error ? e.message : String(e)));
      }
    }, 250);
  };
  // Targets picked from the providers' listed models and the catalogue's for their vendor
  // (typing one works too).
  const choices = conf.providers.flatMap((p) =>
    [...new Set([...p.models, ...catalogueFor(p.kind, p.base_url, conf.catalogue ?? [])])].map(
      (m) => `${p.name}/${m}`,
    ),
  );
  const picker = h(
    "select",
    {
      name: "add-target",
      "aria-label": t("routes.add_target_label"),
      onchange: () => {
        if (!picker.value) return;
        const list = parseTargets(targets.value);
        if (!list.includes(picker.value)) targets.value = [...list, picker.value].join("\n");
        picker.value = "";
        update();
      },
    },
    h("option", { value: "" }, choices.length ? t("routes.add_target") : t("routes.no_models")),
    choices.map((c) => h("option", { value: c }, c)),
  ) as HTMLSelectElement;
  targets.addEventListener("input", update);
  strategy.addEventListener("change", update);
  nameIn.addEventListener("input", update);
  if (r) update();
  return h(
    "form",
    {
      class: "route-edit",
      "data-route": r?.name ?? "",
      onsubmit: (e: Event) => {
        e.preventDefault();
        // A refused route says why in its own form, with the draft kept.
        void formAct(e.currentTarget as HTMLElement, async () => {
          await put(`routes/${seg(nameIn.value.trim())}`, {
            targets: parseTargets(targets.value),
            strategy: strategy.value,
          });
          notice(t("routes.saved", { name: nameIn.value.trim() }));
        });
      },
    },
    h(
      "div",
      { class: "fields", hidden: r !== null },
      nameIn,
      targets,
      picker,
      strategy,
      explained,
      h("button", { type: "submit" }, r ? t("common.save") : t("routes.create")),
      r
        ? h(
            "button",
            {
              type: "button",
              class: "danger",
              onclick: () =>
                confirm(t("routes.delete_confirm", { name: r.name })) &&
                act(t("routes.delete_route"), () => del(`routes/${seg(r.name)}`)),
            },
            t("common.delete"),
          )
        : null,
    ),
    preview,
  );
}

/** What each strategy does, in a sentence (shown under the picker). */
const STRATEGY_KEYS: Record<string, Key> = {
  priority: "strategy.priority",
  "round-robin": "strategy.round_robin",
  weighted: "strategy.weighted",
  "least-in-flight": "strategy.least_in_flight",
  "least-latency": "strategy.least_latency",
  "least-cost": "strategy.least_cost",
  "quota-aware": "strategy.quota_aware",
};

/** A strategy's sentence in the console's language ("" for one the console does not know). */
export function strategyText(s: string): string {
  const key = STRATEGY_KEYS[s];
  return key ? t(key) : "";
}

export function routesView(): HTMLElement[] {
  const conf = state.conf;
  if (!conf) return [h("p", {}, t("common.loading"))];
  const out: HTMLElement[] = [h("h1", {}, t("routes.title"))];
  out.push(h("p", { class: "muted" }, t("routes.intro")));
  if (conf.routes.length === 0) out.push(h("p", { class: "empty" }, t("routes.none")));
  for (const r of conf.routes) {
    const editor = routeEditor(r, conf);
    const fields = editor.querySelector<HTMLElement>(".fields");
    const summary = h(
      "div",
      { class: "route-summary" },
      r.capability
        ? h("p", {}, t("routes.capability_all", { caps: r.capability.join(" + ") }))
        : h(
            "ol",
            { class: "targets" },
            r.targets.map((t) => h("li", {}, h("code", {}, t))),
          ),
      h("p", { class: "muted" }, h("strong", {}, r.strategy), `: ${strategyText(r.strategy)}`),
      r.capability
        ? null
        : h(
            "button",
            {
              type: "button",
              class: "small edit-route",
              onclick: () => {
                if (fields) fields.hidden = false;
                summary.hidden = true;
              },
            },
            t("common.edit"),
          ),
    );
    out.push(
      h(
        "section",
        { class: "route", "data-route": r.name },
        h(
          "h2",
          {},
          r.name,
          " ",
          h(
            "small",
            {},
            r.capability ? t("routes.capability", { caps: r.capability.join(", ") }) : r.strategy,
          ),
        ),
        summary,
        editor,
      ),
    );
  }
  out.push(h("section", {}, h("h2", {}, t("routes.new")), routeEditor(null, conf)));
  return out;
}
