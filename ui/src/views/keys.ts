// Providers and keys: add a provider, add a key into the keychain, test, revive, disable, delete.

import { del, patch, post, put, seg } from "../api";
import { h } from "../dom";
import { countdownLabel, parseTargets } from "../format";
import { state, notice, act, badge } from "../shell";
import { testKey } from "./dashboard";

export function providersView(): HTMLElement[] {
  const conf = state.conf;
  if (!conf) return [h("p", {}, "Loading…")];
  const out: HTMLElement[] = [h("h1", {}, "Providers & keys")];
  if (!conf.editable) {
    out.push(
      h("p", { class: "warn" }, "This Fluxgate has no config file it may edit; changes here are refused."),
    );
  }
  for (const p of conf.providers) {
    const health = new Map(state.keys.filter((k) => k.provider === p.name).map((k) => [k.key_id, k]));
    const idInput = h("input", {
      name: "id",
      required: true,
      pattern: "[A-Za-z0-9._\\-]{1,64}",
      placeholder: "work",
      "aria-label": `New key id for ${p.name}`,
    }) as HTMLInputElement;
    const secretInput = h("input", {
      name: "secret",
      type: "password",
      required: true,
      autocomplete: "off",
      placeholder: "paste the API key",
      "aria-label": `API key for ${p.name}`,
    }) as HTMLInputElement;
    const form = h(
      "form",
      {
        class: "add-key",
        onsubmit: (e: Event) => {
          e.preventDefault();
          const id = idInput.value.trim();
          const secret = secretInput.value;
          secretInput.value = "";
          void act("Add key", async () => {
            const r = await put<{ key: string; hint: string }>(`keys/${seg(p.name)}/${seg(id)}`, { secret });
            notice(`${r.key} is stored in the OS keychain (${r.hint}).`);
          });
        },
      },
      idInput,
      secretInput,
      h("button", { type: "submit" }, "Add key to keychain"),
    );
    out.push(
      h(
        "section",
        { class: "provider", "data-provider": p.name },
        h(
          "h2",
          {},
          p.name,
          " ",
          h("small", {}, `${p.kind} · ${p.base_url}`),
          h(
            "label",
            { class: "toggle" },
            h("input", {
              type: "checkbox",
              checked: p.enabled,
              onchange: (e: Event) =>
                act("Provider", () =>
                  patch(`providers/${seg(p.name)}`, { enabled: (e.target as HTMLInputElement).checked }),
                ),
            }),
            " enabled",
          ),
        ),
        p.keys.length
          ? h(
              "table",
              { class: "keys" },
              h(
                "thead",
                {},
                h(
                  "tr",
                  {},
                  ["Key", "Secret", "State", "", ""].map((t) => h("th", { scope: "col" }, t)),
                ),
              ),
              h(
                "tbody",
                {},
                p.keys.map((k) => {
                  const st = health.get(k.id);
                  return h(
                    "tr",
                    { "data-key": `${p.name}/${k.id}` },
                    h("td", {}, h("code", {}, k.id)),
                    h("td", {}, k.secret),
                    h("td", {}, badge(st?.status ?? (k.enabled ? "healthy" : "disabled"))),
                    h(
                      "td",
                      {},
                      st?.until_ms
                        ? h(
                            "span",
                            { "data-until": st.until_ms, "data-label": countdownLabel(st.status) },
                            "",
                          )
                        : "",
                    ),
                    h(
                      "td",
                      { class: "actions" },
                      h("button", { type: "button", onclick: () => testKey(p.name, k.id) }, "Test"),
                      h(
                        "button",
                        {
                          type: "button",
                          onclick: () => act("Revive", () => post(`keys/${seg(p.name)}/${seg(k.id)}/revive`)),
                        },
                        "Revive",
                      ),
                      k.enabled
                        ? h(
                            "button",
                            {
                              type: "button",
                              onclick: () =>
                                act("Disable", () => post(`keys/${seg(p.name)}/${seg(k.id)}/disable`)),
                            },
                            "Disable",
                          )
                        : h(
                            "button",
                            {
                              type: "button",
                              onclick: () =>
                                act("Enable", () => post(`keys/${seg(p.name)}/${seg(k.id)}/enable`)),
                            },
                            "Enable",
                          ),
                      h(
                        "button",
                        {
                          type: "button",
                          class: "danger",
                          onclick: () => {
                            if (
                              confirm(
                                `Delete ${p.name}/${k.id} from the config${k.secret === "keychain" ? " and the keychain" : ""}?`,
                              )
                            ) {
                              void act("Delete", () => del(`keys/${seg(p.name)}/${seg(k.id)}`));
                            }
                          },
                        },
                        "Delete",
                      ),
                    ),
                  );
                }),
              ),
            )
          : h("p", { class: "empty" }, "No keys yet: add the first one below."),
        form,
      ),
    );
  }
  const name = h("input", {
    name: "name",
    required: true,
    placeholder: "deepseek",
    "aria-label": "Provider name",
  }) as HTMLInputElement;
  const kind = h(
    "select",
    { name: "kind", "aria-label": "Provider kind" },
    conf.kinds.map((k) => h("option", { value: k }, k)),
  ) as HTMLSelectElement;
  const base = h("input", {
    name: "base_url",
    placeholder: "base URL (empty: the vendor's)",
    "aria-label": "Base URL",
  }) as HTMLInputElement;
  const models = h("input", {
    name: "models",
    placeholder: "models, comma-separated (optional)",
    "aria-label": "Models",
  }) as HTMLInputElement;
  out.push(
    h(
      "section",
      {},
      h("h2", {}, "Add a provider"),
      h(
        "form",
        {
          class: "add-provider",
          onsubmit: (e: Event) => {
            e.preventDefault();
            void act("Add provider", () =>
              post("providers", {
                name: name.value.trim(),
                kind: kind.value,
                base_url: base.value.trim() || undefined,
                models: parseTargets(models.value),
              }),
            );
          },
        },
        name,
        kind,
        base,
        models,
        h("button", { type: "submit" }, "Add provider"),
      ),
    ),
  );
  return out;
}
