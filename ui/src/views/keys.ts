// Providers and keys: add a provider, add a key into the keychain, test, revive, disable, delete.

import { del, get, patch, post, put, seg } from "../api";
import { h } from "../dom";
import { countdownLabel, parseTargets } from "../format";
import { state, notice, act, badge, formAct, ProviderConf } from "../shell";
import { PRESETS, presetTitle } from "../presets";
import { testKey } from "./dashboard";
import { t } from "../i18n";

/** A provider's base URL and models, edited in place, and Delete. */
function providerEditor(p: ProviderConf): HTMLElement {
  const base = h("input", {
    name: "base_url",
    value: p.base_url,
    size: 36,
    "aria-label": t("keys.base_url_of", { name: p.name }),
  }) as HTMLInputElement;
  const models = h("input", {
    name: "models",
    value: p.models.join(", "),
    size: 36,
    placeholder: t("keys.models_placeholder"),
    "aria-label": t("keys.models_of", { name: p.name }),
  }) as HTMLInputElement;
  const form: HTMLElement = h(
    "form",
    {
      class: "edit-provider",
      "data-provider": p.name,
      hidden: true,
      onsubmit: (e: Event) => {
        e.preventDefault();
        void formAct(form, () =>
          patch(`providers/${seg(p.name)}`, {
            base_url: base.value.trim(),
            models: parseTargets(models.value),
          }),
        );
      },
    },
    h("label", {}, `${t("keys.base_url")} `, base),
    h("label", {}, `${t("keys.models")} `, models),
    h("button", { type: "submit" }, t("common.save")),
    h("button", { type: "button", onclick: () => (form.hidden = true) }, t("common.cancel")),
  );
  return h(
    "div",
    { class: "provider-actions" },
    h(
      "button",
      { type: "button", class: "small", onclick: () => (form.hidden = !form.hidden) },
      t("common.edit"),
    ),
    h(
      "button",
      {
        type: "button",
        class: "small danger",
        title: t("keys.delete_provider_title"),
        onclick: () => {
          if (confirm(t("keys.delete_provider_confirm", { name: p.name })))
            void act(t("keys.delete_provider"), () => del(`providers/${seg(p.name)}`));
        },
      },
      t("common.delete"),
    ),
    form,
  );
}

/** The OS keychain's state, read when the page opens (see `loadKeychain`). */
let keychain: { state: string; detail: string; hint: string | null } | null = null;

/** What the add-key form says about the keychain before a key is pasted. */
function keychainNote(): string {
  if (!keychain) return "";
  if (keychain.state === "ok") return t("keys.keychain_ready");
  return t("keys.keychain_state", { detail: keychain.detail, hint: keychain.hint ?? "" }).trim();
}

/** Asks the keychain's state once per visit to the page (a D-Bus round trip on Linux). */
export async function loadKeychain(): Promise<void> {
  try {
    keychain = await get<{ state: string; detail: string; hint: string | null }>("keychain");
  } catch {
    keychain = null;
  }
}

export function providersView(): HTMLElement[] {
  const conf = state.conf;
  if (!conf) return [h("p", {}, t("common.loading"))];
  const out: HTMLElement[] = [h("h1", {}, t("keys.title"))];
  if (!conf.editable) {
    out.push(h("p", { class: "warn" }, t("keys.not_editable")));
  }
  for (const p of conf.providers) {
    const health = new Map(state.keys.filter((k) => k.provider === p.name).map((k) => [k.key_id, k]));
    const idInput = h("input", {
      name: "id",
      required: true,
      pattern: "[A-Za-z0-9._\\-]{1,64}",
      placeholder: "work",
      "aria-label": t("keys.new_id_for", { name: p.name }),
    }) as HTMLInputElement;
    const secretInput = h("input", {
      name: "secret",
      type: "password",
      required: true,
      autocomplete: "off",
      placeholder: t("keys.paste"),
      "aria-label": t("keys.api_key_for", { name: p.name }),
    }) as HTMLInputElement;
    const source = h(
      "select",
      { name: "source", "aria-label": t("keys.source_of", { name: p.name }) },
      h("option", { value: "keychain" }, t("keys.in_keychain")),
      h("option", { value: "env" }, t("keys.in_env")),
      h("option", { value: "file" }, t("keys.in_file")),
    ) as HTMLSelectElement;
    const sourceNote = h("p", { class: "muted source-note" }, keychainNote());
    source.addEventListener("change", () => {
      const v = source.value;
      secretInput.type = v === "keychain" ? "password" : "text";
      secretInput.value = "";
      secretInput.placeholder =
        v === "keychain"
          ? t("keys.paste")
          : v === "env"
            ? t("keys.env_placeholder")
            : t("keys.file_placeholder");
      secretInput.setAttribute(
        "aria-label",
        v === "keychain" ? t("keys.api_key_for", { name: p.name }) : t("keys.read_from_of", { name: p.name }),
      );
      sourceNote.textContent =
        v === "keychain" ? keychainNote() : v === "env" ? t("keys.env_note") : t("keys.file_note");
    });
    const form = h(
      "form",
      {
        class: "add-key",
        onsubmit: (e: Event) => {
          e.preventDefault();
          const id = idInput.value.trim();
          // The secret stays in its field until the key is stored: a refused one can be fixed
          // instead of pasted again.
          void formAct(form, async () => {
            const v = source.value;
            const value = secretInput.value.trim();
            const body =
              v === "keychain"
                ? { secret: secretInput.value }
                : v === "env"
                  ? { env: value }
                  : { file: value };
            const r = await put<{ key: string; hint?: string; stored_in: string; note?: string | null }>(
              `keys/${seg(p.name)}/${seg(id)}`,
              body,
            );
            secretInput.value = "";
            notice(
              v === "keychain"
                ? t("keys.stored", { key: r.key, hint: r.hint ?? "" })
                : t("keys.read_from", { key: r.key, where: r.stored_in }) + (r.note ? ` ${r.note}` : ""),
            );
          });
        },
      },
      idInput,
      source,
      secretInput,
      h("button", { type: "submit" }, t("keys.add_key")),
      sourceNote,
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
                act(t("keys.provider"), () =>
                  patch(`providers/${seg(p.name)}`, { enabled: (e.target as HTMLInputElement).checked }),
                ),
            }),
            ` ${t("keys.enabled")}`,
          ),
        ),
        providerEditor(p),
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
                  [t("col.key"), t("col.secret"), t("col.state"), "", ""].map((x) =>
                    h("th", { scope: "col" }, x),
                  ),
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
                      h(
                        "button",
                        { type: "button", title: t("dash.test_title"), onclick: () => testKey(p.name, k.id) },
                        t("keys.test"),
                      ),
                      st && st.status !== "healthy" && st.status !== "disabled"
                        ? h(
                            "button",
                            {
                              type: "button",
                              title: t("dash.revive_title"),
                              onclick: () =>
                                act("Revive", () => post(`keys/${seg(p.name)}/${seg(k.id)}/revive`)),
                            },
                            t("keys.revive"),
                          )
                        : null,
                      k.enabled
                        ? h(
                            "button",
                            {
                              type: "button",
                              onclick: () =>
                                act(t("keys.disable"), () =>
                                  post(`keys/${seg(p.name)}/${seg(k.id)}/disable`),
                                ),
                            },
                            t("keys.disable"),
                          )
                        : h(
                            "button",
                            {
                              type: "button",
                              onclick: () =>
                                act(t("keys.enable"), () => post(`keys/${seg(p.name)}/${seg(k.id)}/enable`)),
                            },
                            t("keys.enable"),
                          ),
                      h(
                        "button",
                        {
                          type: "button",
                          class: "danger",
                          onclick: () => {
                            if (
                              confirm(
                                t(
                                  k.secret === "keychain"
                                    ? "keys.delete_key_confirm_kc"
                                    : "keys.delete_key_confirm",
                                  {
                                    key: `${p.name}/${k.id}`,
                                  },
                                ),
                              )
                            ) {
                              void act(t("common.delete"), () => del(`keys/${seg(p.name)}/${seg(k.id)}`));
                            }
                          },
                        },
                        t("common.delete"),
                      ),
                    ),
                  );
                }),
              ),
            )
          : h("p", { class: "empty" }, t("keys.no_keys")),
        form,
      ),
    );
  }
  const name = h("input", {
    name: "name",
    required: true,
    placeholder: "deepseek",
    "aria-label": t("keys.provider_name"),
  }) as HTMLInputElement;
  const presetNote = h("p", { class: "muted preset-note" }, "");
  const preset = h(
    "select",
    {
      name: "preset",
      "aria-label": t("keys.preset"),
      onchange: () => {
        const p = PRESETS.find((x) => x.id === preset.value);
        if (!p) return;
        name.value = name.value || p.id;
        kind.value = p.kind;
        base.value = p.base_url;
        models.value = p.models.join(", ");
        presetNote.textContent = p.note ? t(p.note) : "";
      },
    },
    h("option", { value: "" }, t("keys.start_preset")),
    PRESETS.map((p) => h("option", { value: p.id }, presetTitle(p))),
  ) as HTMLSelectElement;
  const kind = h(
    "select",
    { name: "kind", "aria-label": t("keys.provider_kind") },
    conf.kinds.map((k) => h("option", { value: k }, k)),
  ) as HTMLSelectElement;
  const base = h("input", {
    name: "base_url",
    placeholder: t("keys.base_placeholder"),
    "aria-label": t("keys.base_url"),
  }) as HTMLInputElement;
  const models = h("input", {
    name: "models",
    placeholder: t("keys.models_optional"),
    "aria-label": t("keys.models"),
  }) as HTMLInputElement;
  out.push(
    h(
      "section",
      {},
      h("h2", {}, t("keys.add_provider_title")),
      h(
        "form",
        {
          class: "add-provider",
          onsubmit: (e: Event) => {
            e.preventDefault();
            void formAct(e.currentTarget as HTMLElement, () =>
              post("providers", {
                name: name.value.trim(),
                kind: kind.value,
                base_url: base.value.trim() || undefined,
                models: parseTargets(models.value),
              }),
            );
          },
        },
        preset,
        name,
        kind,
        base,
        models,
        h("button", { type: "submit" }, t("keys.add_provider")),
        presetNote,
      ),
    ),
  );
  return out;
}
