// The first run: with no config file and no key, the console opens here. It lists the keys
// already on this machine (provider, last four characters, where each was found; the key itself
// never reaches the page), stores the ones the user ticks in the OS keychain, then offers to
// point the tools found at Fluxgate. Nothing is stored without a click.

import { get, post } from "../api";
import { h } from "../dom";
import { ToolRow, toolSection } from "./setup";
import { t } from "../i18n";

export interface FoundKey {
  id: string;
  provider: string;
  key_id: string;
  hint: string;
  source: string;
}
export interface InitState {
  welcome: boolean;
  found: FoundKey[];
  tools: string[];
}

export async function welcomeView(init: InitState): Promise<HTMLElement[]> {
  const msg = h("p", { class: "form-msg", role: "status", "aria-live": "polite" }, "");
  const toolsBox = h("div", { id: "welcome-tools" });
  const showTools = async () => {
    const all = await get<{ tools: ToolRow[] }>("setup/tools");
    const found = all.tools.filter((x) => init.tools.includes(x.id));
    toolsBox.replaceChildren(
      h("h2", {}, t("welcome.step2")),
      found.length ? h("p", {}, t("welcome.tools_found")) : h("p", { class: "muted" }, t("welcome.no_tools")),
      ...found.map(toolSection),
      h(
        "p",
        {},
        h(
          "a",
          {
            href: "#dashboard",
            id: "welcome-done",
            onclick: () => document.dispatchEvent(new Event("fluxgate:welcome-done")),
          },
          t("welcome.go_dashboard"),
        ),
      ),
    );
  };
  const rows = init.found.map((f) =>
    h(
      "li",
      {},
      h(
        "label",
        {},
        h("input", { type: "checkbox", name: "key", value: f.id }),
        " ",
        h("strong", {}, f.provider),
        " ",
        h("code", {}, f.hint),
        " ",
        h("span", { class: "muted" }, t("welcome.from", { source: f.source })),
      ),
    ),
  );
  const form = h(
    "form",
    {
      class: "welcome-keys",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const ids = Array.from(
          (e.target as HTMLFormElement).querySelectorAll<HTMLInputElement>("input[name=key]:checked"),
        ).map((i) => i.value);
        if (!ids.length) {
          msg.textContent = t("welcome.tick_first");
          msg.className = "form-msg error";
          return;
        }
        try {
          const r = await post<{ stored: string[] }>("init", { ids });
          msg.textContent = t("welcome.stored", { keys: r.stored.join(", ") });
          msg.className = "form-msg";
          await showTools();
        } catch (err) {
          msg.textContent = err instanceof Error ? err.message : String(err);
          msg.className = "form-msg error";
        }
      },
    },
    h("ul", { class: "found" }, ...rows),
    h("button", { type: "submit" }, t("welcome.store")),
  );
  const out: HTMLElement[] = [
    h("h1", {}, t("welcome.title")),
    h("p", {}, t("welcome.intro")),
    h("h2", {}, t("welcome.step1")),
  ];
  if (init.found.length) {
    out.push(h("p", {}, t("welcome.found")), form, msg);
  } else {
    out.push(
      h(
        "p",
        {},
        t("welcome.none"),
        h("a", { href: "#keys" }, t("nav.keys")),
        t("welcome.none_mid"),
        h("code", {}, "fluxgate init"),
        t("welcome.none_end"),
      ),
    );
  }
  out.push(toolsBox);
  if (!init.found.length) await showTools();
  return out;
}
