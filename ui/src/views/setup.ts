// Client setup (a token per tool) and settings.

import { post } from "../api";
import { h } from "../dom";
import { state, showError, notice, act, copy } from "../shell";
import { forget } from "../session";

export function setupView(): HTMLElement[] {
  const conf = state.conf;
  if (!conf) return [h("p", {}, "Loading…")];
  const out: HTMLElement[] = [
    h("h1", {}, "Client setup"),
    h("p", {}, "Base URL: ", h("code", { id: "base-url" }, conf.base_url), " ", h("button", { type: "button", onclick: () => copy(conf.base_url) }, "Copy")),
  ];
  for (const c of conf.clients) {
    const text = h("pre", { class: "snippet", "data-client": c.id, tabindex: 0 }, "") as HTMLElement;
    const copyBtn = h("button", { type: "button", disabled: true, onclick: () => copy(text.textContent ?? "") }, "Copy") as HTMLButtonElement;
    out.push(
      h(
        "section",
        {},
        h("h2", {}, c.title),
        h(
          "button",
          {
            type: "button",
            onclick: async () => {
              try {
                const r = await post<{ text: string; token_name: string }>("setup", { client: c.id });
                text.textContent = r.text;
                copyBtn.disabled = false;
                notice(`Client token “${r.token_name}” made for ${c.title}; it is shown only here, now.`);
              } catch (e) {
                showError(e);
              }
            },
          },
          "Make a token and show the setup",
        ),
        " ",
        copyBtn,
        text,
      ),
    );
  }
  return out;
}

export function settingsView(): HTMLElement[] {
  const conf = state.conf;
  if (!conf) return [h("p", {}, "Loading…")];
  return [
    h("h1", {}, "Settings"),
    h(
      "section",
      {},
      h("h2", {}, "Routing"),
      h("p", {}, conf.paused ? "Routing is paused: tools get 503 routing_paused and nothing is sent upstream." : "Routing is on."),
      conf.paused
        ? h("button", { type: "button", id: "resume", onclick: () => act("Resume", () => post("resume")) }, "Resume routing")
        : h("button", { type: "button", id: "pause", onclick: () => act("Pause", () => post("pause")) }, "Pause routing"),
    ),
    h(
      "section",
      {},
      h("h2", {}, "Where things are"),
      h(
        "dl",
        {},
        h("dt", {}, "Listening on"),
        h("dd", {}, h("code", {}, conf.listen)),
        h("dt", {}, "Config file"),
        h("dd", {}, h("code", {}, conf.config_file ?? "none"), conf.from_environment ? " (not written yet: providers come from environment variables; the first change here creates it)" : ""),
        h("dt", {}, "Data directory"),
        h("dd", {}, h("code", {}, conf.data_dir)),
        h("dt", {}, "Keys"),
        h("dd", {}, "in the OS keychain (service “fluxgate”), or where the config's env:/file: references say"),
      ),
      h("p", { class: "muted" }, "Edits made here are written to the config file with its comments kept; edits made to the file by hand are picked up within a second."),
    ),
    h(
      "section",
      {},
      h("h2", {}, "Session"),
      h("button", { type: "button", onclick: () => act("Sign out", () => post("logout")).then(() => { forget(); location.reload(); }) }, "Sign out of this console"),
    ),
  ];
}

