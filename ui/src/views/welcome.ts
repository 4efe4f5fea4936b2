// The first run: with no config file and no key, the console opens here. It lists the keys
// already on this machine (provider, last four characters, where each was found; the key itself
// never reaches the page), stores the ones the user ticks in the OS keychain, then offers to
// point the tools found at Fluxgate. Nothing is stored without a click.

import { get, post } from "../api";
import { h } from "../dom";
import { ToolRow, toolSection } from "./setup";

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
    const found = all.tools.filter((t) => init.tools.includes(t.id));
    toolsBox.replaceChildren(
      h("h2", {}, "2. Point your tools at Fluxgate"),
      found.length
        ? h(
            "p",
            {},
            "These tools are on this machine. Each button edits the tool's own config (you see the change first with Preview; Undo puts it back).",
          )
        : h(
            "p",
            { class: "muted" },
            "No tool Fluxgate can set up was found; the Client setup page has the settings for any tool or SDK.",
          ),
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
          "Go to the dashboard",
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
        h("span", { class: "muted" }, `from ${f.source}`),
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
          msg.textContent = "Tick the keys to keep first.";
          msg.className = "form-msg error";
          return;
        }
        try {
          const r = await post<{ stored: string[] }>("init", { ids });
          msg.textContent = `Stored ${r.stored.join(", ")} in the OS keychain and wrote the config file.`;
          msg.className = "form-msg";
          await showTools();
        } catch (err) {
          msg.textContent = err instanceof Error ? err.message : String(err);
          msg.className = "form-msg error";
        }
      },
    },
    h("ul", { class: "found" }, ...rows),
    h("button", { type: "submit" }, "Store the ticked keys in the keychain"),
  );
  const out: HTMLElement[] = [
    h("h1", {}, "Welcome to Fluxgate"),
    h(
      "p",
      {},
      "Fluxgate keeps your API keys in the OS keychain and gives every AI tool on this machine one local address, with failover across keys and providers.",
    ),
    h("h2", {}, "1. Keep the keys you already have"),
  ];
  if (init.found.length) {
    out.push(
      h(
        "p",
        {},
        "These keys are already on this machine. Tick the ones Fluxgate should keep; nothing is moved until you do.",
      ),
      form,
      msg,
    );
  } else {
    out.push(
      h(
        "p",
        {},
        "No keys were found in the usual places. Add one on the ",
        h("a", { href: "#keys" }, "Providers & keys"),
        " page, or run ",
        h("code", {}, "fluxgate init"),
        " in a terminal.",
      ),
    );
  }
  out.push(toolsBox);
  if (!init.found.length) await showTools();
  return out;
}
