// Routes: edit targets and strategy with a live explain preview of the order.

import { del, post, put, seg } from "../api";
import { clear, h } from "../dom";
import { parseTargets } from "../format";
import { Conf, RouteConf, state, notice, act } from "../shell";

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
      : h("p", { class: "warn" }, "No candidate could serve this route now."),
    skipped.length
      ? h(
          "ul",
          { class: "skipped" },
          skipped.map((s) =>
            h(
              "li",
              {},
              h("code", {}, `${s.provider}${s.key_id ? "/" + s.key_id : ""}`),
              ` skipped: ${s.why}`,
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
    "aria-label": "Route name (the model name clients ask for)",
    readonly: r !== null,
  }) as HTMLInputElement;
  const targets = h(
    "textarea",
    {
      name: "targets",
      rows: 3,
      "aria-label": "Targets, one provider/model per line",
      placeholder: "anthropic/claude-sonnet-4-5\nopenai/gpt-4o",
    },
    (r?.targets ?? []).join("\n"),
  ) as HTMLTextAreaElement;
  const strategy = h(
    "select",
    { name: "strategy", "aria-label": "Strategy" },
    conf.strategies.map((s) => h("option", { value: s, selected: s === (r?.strategy ?? "priority") }, s)),
  ) as HTMLSelectElement;
  const preview = h(
    "div",
    { class: "preview", "aria-live": "polite" },
    h("p", { class: "muted" }, "Edit the targets to see the order Fluxgate would try."),
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
        if (mine === seq)
          clear(preview, h("h3", {}, "Explain: the order for the next request"), planList(plan));
      } catch (e) {
        if (mine === seq)
          clear(preview, h("p", { class: "error" }, e instanceof Error ? e.message : String(e)));
      }
    }, 250);
  };
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
        void act("Save route", async () => {
          await put(`routes/${seg(nameIn.value.trim())}`, {
            targets: parseTargets(targets.value),
            strategy: strategy.value,
          });
          notice(`Route ${nameIn.value.trim()} saved to the config file.`);
        });
      },
    },
    h(
      "div",
      { class: "fields" },
      nameIn,
      targets,
      strategy,
      h("button", { type: "submit" }, r ? "Save" : "Create route"),
      r
        ? h(
            "button",
            {
              type: "button",
              class: "danger",
              onclick: () =>
                confirm(`Delete route ${r.name}?`) && act("Delete route", () => del(`routes/${seg(r.name)}`)),
            },
            "Delete",
          )
        : null,
    ),
    preview,
  );
}

export function routesView(): HTMLElement[] {
  const conf = state.conf;
  if (!conf) return [h("p", {}, "Loading…")];
  const out: HTMLElement[] = [h("h1", {}, "Routes")];
  out.push(
    h(
      "p",
      { class: "muted" },
      "A route is a model name your tools ask for; Fluxgate tries its targets in the order shown. A model named provider/model works without a route.",
    ),
  );
  if (conf.routes.length === 0) out.push(h("p", { class: "empty" }, "No routes yet."));
  for (const r of conf.routes) {
    out.push(
      h(
        "section",
        { class: "route" },
        h(
          "h2",
          {},
          r.name,
          " ",
          h("small", {}, r.capability ? `capability: ${r.capability.join(", ")}` : r.strategy),
        ),
        routeEditor(r, conf),
      ),
    );
  }
  out.push(h("section", {}, h("h2", {}, "New route"), routeEditor(null, conf)));
  return out;
}
