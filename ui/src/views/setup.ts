// Client setup (a token per tool) and settings.

import { get, post } from "../api";
import { h } from "../dom";
import { state, showError, notice, act, copy } from "../shell";
import { forget } from "../session";

export interface ToolRow {
  id: string;
  title: string;
  files: string[];
  configured: boolean;
  undo: boolean;
  problem: string | null;
  note: string | null;
}
interface SetupResult {
  changes: boolean;
  diff: string;
  token_name: string | null;
  written: string[];
  note: string | null;
}

/** One tool whose own config files Fluxgate writes: status, preview (a diff), set up, undo. */
export function toolSection(t: ToolRow): HTMLElement {
  const out = h("pre", { class: "diff", "data-tool": t.id, hidden: true, tabindex: 0 }, "");
  const msg = h("p", { class: "form-msg", role: "status", "aria-live": "polite" }, "");
  const badge = h("span", { class: "badge" }, "");
  const undoBtn = h("button", { type: "button", class: "undo" }, "Undo") as HTMLButtonElement;
  const status = (configured: boolean, undo: boolean) => {
    badge.textContent = configured ? "uses Fluxgate" : "not set up";
    badge.className = configured ? "badge healthy" : "badge";
    badge.dataset.configured = String(configured);
    undoBtn.hidden = !undo;
  };
  status(t.configured, t.undo);
  const say = (text: string, bad = false) => {
    msg.textContent = text;
    msg.className = bad ? "form-msg error" : "form-msg";
  };
  const run = async (dryRun: boolean) => {
    try {
      const r = await post<SetupResult>(`setup/tools/${t.id}`, { dry_run: dryRun });
      out.hidden = !r.diff.includes("@@");
      out.textContent = r.diff;
      if (!r.changes) say(`${t.title} already uses this Fluxgate; nothing to change.`);
      else if (dryRun) say("This is what would change; nothing was written and no token was made.");
      else {
        say(
          `${t.title} now uses Fluxgate${r.token_name ? ` with the new client token “${r.token_name}”` : ""}. Wrote ${r.written.join(", ")}; the originals are kept for Undo.${r.note ? " " + r.note : ""}`,
        );
        status(true, true);
      }
    } catch (e) {
      say(e instanceof Error ? e.message : String(e), true);
    }
  };
  undoBtn.onclick = async () => {
    try {
      const r = await post<{ restored: string[] }>(`setup/tools/${t.id}/undo`);
      out.hidden = true;
      say(`Restored ${r.restored.join(", ")} as they were before the setup; its token is revoked.`);
      status(false, false);
    } catch (e) {
      say(e instanceof Error ? e.message : String(e), true);
    }
  };
  return h(
    "section",
    { class: "tool", "data-tool": t.id },
    h("h2", {}, t.title, " ", badge),
    h(
      "p",
      { class: "muted" },
      "Writes ",
      ...t.files.flatMap((f, i) => [i ? ", " : "", h("code", {}, f)]),
      " (everything else in them is kept; the originals are backed up).",
    ),
    t.problem ? h("p", { class: "form-msg error" }, t.problem) : h("span", {}),
    h("button", { type: "button", class: "preview", onclick: () => run(true) }, "Preview the change"),
    " ",
    h("button", { type: "button", class: "apply", onclick: () => run(false) }, `Set up ${t.title}`),
    " ",
    undoBtn,
    msg,
    out,
  );
}

export async function setupView(): Promise<HTMLElement[]> {
  const conf = state.conf;
  if (!conf) return [h("p", {}, "Loading…")];
  const tools = await get<{ tools: ToolRow[] }>("setup/tools");
  const out: HTMLElement[] = [
    h("h1", {}, "Client setup"),
    h(
      "p",
      {},
      "Base URL: ",
      h("code", { id: "base-url" }, conf.base_url),
      " ",
      h("button", { type: "button", onclick: () => copy(conf.base_url) }, "Copy"),
    ),
    h(
      "p",
      { class: "muted" },
      "One click points a tool at Fluxgate by editing its own config, with a client token made for it. The same is ",
      h("code", {}, "fluxgate setup TOOL"),
      " in a terminal.",
    ),
    ...tools.tools.map(toolSection),
    h("h2", {}, "Other tools and SDKs"),
  ];
  const writable = new Set(tools.tools.map((t) => t.id));
  for (const c of conf.clients.filter((c) => !writable.has(c.id))) {
    const text = h("pre", { class: "snippet", "data-client": c.id, tabindex: 0 }, "");
    const copyBtn = h(
      "button",
      { type: "button", disabled: true, onclick: () => copy(text.textContent ?? "") },
      "Copy",
    ) as HTMLButtonElement;
    out.push(
      h(
        "section",
        {},
        h("h3", {}, c.title),
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
      h(
        "p",
        {},
        conf.paused
          ? "Routing is paused: tools get 503 routing_paused and nothing is sent upstream."
          : "Routing is on.",
      ),
      conf.paused
        ? h(
            "button",
            { type: "button", id: "resume", onclick: () => act("Resume", () => post("resume")) },
            "Resume routing",
          )
        : h(
            "button",
            { type: "button", id: "pause", onclick: () => act("Pause", () => post("pause")) },
            "Pause routing",
          ),
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
        h(
          "dd",
          {},
          h("code", {}, conf.config_file ?? "none"),
          conf.from_environment
            ? " (not written yet: providers come from environment variables; the first change here creates it)"
            : "",
        ),
        h("dt", {}, "Data directory"),
        h("dd", {}, h("code", {}, conf.data_dir)),
        h("dt", {}, "Shared state"),
        conf.shared.redis === null
          ? h("dd", {}, "none: key health and limits are this machine's own")
          : h(
              "dd",
              {},
              "key health and limits shared with other Fluxgates through Redis at ",
              h("code", {}, conf.shared.redis),
              conf.shared.up === false
                ? h(
                    "strong",
                    { class: "error" },
                    " — unreachable: running on this machine's own state until it answers",
                  )
                : " — answering",
            ),
        h("dt", {}, "Request log"),
        conf.shared.postgres === null
          ? h("dd", {}, "this machine's own (SQLite in the data directory)")
          : h(
              "dd",
              {},
              "the whole fleet's, in PostgreSQL at ",
              h("code", {}, conf.shared.postgres),
              conf.shared.postgres_up === false
                ? h(
                    "strong",
                    { class: "error" },
                    ` — unreachable: ${conf.shared.postgres_pending ?? 0} records wait in memory; usage shows this machine's own until it answers`,
                  )
                : " — answering",
            ),
        h("dt", {}, "Keys"),
        h(
          "dd",
          {},
          "in the OS keychain (service “fluxgate”), or where the config's env:/file: references say",
        ),
      ),
      h(
        "p",
        { class: "muted" },
        "Edits made here are written to the config file with its comments kept; edits made to the file by hand are picked up within a second.",
      ),
    ),
    h(
      "section",
      {},
      h("h2", {}, "Session"),
      h(
        "button",
        {
          type: "button",
          onclick: () =>
            act("Sign out", () => post("logout")).then(() => {
              forget();
              location.reload();
            }),
        },
        "Sign out of this console",
      ),
    ),
  ];
}
