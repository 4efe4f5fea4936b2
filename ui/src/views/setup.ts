// Client setup (a token per tool) and settings.

import { del, get, post, seg } from "../api";
import { h } from "../dom";
import { state, showError, notice, act, copy } from "../shell";
import { forget } from "../session";
import { ago } from "../format";
import { lang, t } from "../i18n";

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
export function toolSection(tool: ToolRow): HTMLElement {
  const out = h("pre", { class: "diff", "data-tool": tool.id, hidden: true, tabindex: 0 }, "");
  const msg = h("p", { class: "form-msg", role: "status", "aria-live": "polite" }, "");
  const badge = h("span", { class: "badge" }, "");
  const undoBtn = h("button", { type: "button", class: "undo" }, t("setup.undo")) as HTMLButtonElement;
  const status = (configured: boolean, undo: boolean) => {
    badge.textContent = configured ? t("setup.uses") : t("setup.not_set_up");
    badge.className = configured ? "badge healthy" : "badge";
    badge.dataset.configured = String(configured);
    undoBtn.hidden = !undo;
  };
  status(tool.configured, tool.undo);
  const say = (text: string, bad = false) => {
    msg.textContent = text;
    msg.className = bad ? "form-msg error" : "form-msg";
  };
  const run = async (dryRun: boolean) => {
    try {
      const r = await post<SetupResult>(`setup/tools/${tool.id}`, { dry_run: dryRun });
      out.hidden = !r.diff.includes("@@");
      out.textContent = r.diff;
      if (!r.changes) say(t("setup.already", { tool: tool.title }));
      else if (dryRun) say(t("setup.dry_run"));
      else {
        say(
          t(r.token_name ? "setup.done_token" : "setup.done", {
            tool: tool.title,
            token: r.token_name ?? "",
            files: r.written.join(", "),
          }) + (r.note ? " " + r.note : ""),
        );
        status(true, true);
      }
    } catch (e) {
      say(e instanceof Error ? e.message : String(e), true);
    }
  };
  undoBtn.onclick = async () => {
    try {
      const r = await post<{ restored: string[] }>(`setup/tools/${tool.id}/undo`);
      out.hidden = true;
      say(t("setup.restored", { files: r.restored.join(", ") }));
      status(false, false);
    } catch (e) {
      say(e instanceof Error ? e.message : String(e), true);
    }
  };
  return h(
    "section",
    { class: "tool", "data-tool": tool.id },
    h("h2", {}, tool.title, " ", badge),
    h(
      "p",
      { class: "muted" },
      t("setup.writes"),
      ...tool.files.flatMap((f, i) => [i ? ", " : "", h("code", {}, f)]),
      t("setup.writes_after"),
    ),
    tool.problem ? h("p", { class: "form-msg error" }, tool.problem) : h("span", {}),
    h("button", { type: "button", class: "preview", onclick: () => run(true) }, t("setup.preview")),
    " ",
    h(
      "button",
      { type: "button", class: "apply", onclick: () => run(false) },
      t("setup.set_up", { tool: tool.title }),
    ),
    " ",
    undoBtn,
    msg,
    out,
  );
}

/** A client token as `/admin/api/tokens` lists it (never the token itself). */
interface TokenRow {
  name: string;
  created_ms: number;
  last_used_ms: number | null;
  expires_ms?: number;
  routes?: string[];
  providers?: string[];
}

/** The client tokens: when each was made and last used, its limits, and Revoke. */
function tokensSection(tokens: TokenRow[]): HTMLElement {
  const now = Date.now();
  const limits = (tk: TokenRow) =>
    [
      tk.expires_ms ? t("setup.expires", { date: new Date(tk.expires_ms).toLocaleDateString(lang()) }) : null,
      tk.routes?.length ? t("setup.routes", { list: tk.routes.join(", ") }) : null,
      tk.providers?.length ? t("setup.providers", { list: tk.providers.join(", ") }) : null,
    ]
      .filter((x) => x !== null)
      .join(t("dash.sep")) || t("setup.any");
  return h(
    "section",
    { class: "tokens" },
    h("h2", {}, t("setup.tokens_title")),
    h("p", { class: "muted" }, t("setup.tokens_intro")),
    tokens.length === 0
      ? h("p", { class: "empty" }, t("setup.no_tokens"))
      : h(
          "table",
          { class: "tokens" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              [t("col.name"), t("col.made"), t("col.last_used"), t("col.limits"), ""].map((x) =>
                h("th", { scope: "col" }, x),
              ),
            ),
          ),
          h(
            "tbody",
            {},
            tokens.map((tk) =>
              h(
                "tr",
                { "data-token": tk.name },
                h("td", {}, h("code", {}, tk.name)),
                h("td", {}, new Date(tk.created_ms).toLocaleDateString(lang())),
                h(
                  "td",
                  { class: tk.last_used_ms === null ? "muted" : "" },
                  tk.last_used_ms === null ? t("setup.not_since") : ago(tk.last_used_ms, now),
                ),
                h("td", {}, limits(tk)),
                h(
                  "td",
                  {},
                  h(
                    "button",
                    {
                      type: "button",
                      class: "danger",
                      onclick: () => {
                        if (confirm(t("setup.revoke_confirm", { name: tk.name })))
                          void act(t("setup.revoke"), () => del(`tokens/${seg(tk.name)}`));
                      },
                    },
                    t("setup.revoke"),
                  ),
                ),
              ),
            ),
          ),
        ),
  );
}

export async function setupView(): Promise<HTMLElement[]> {
  const conf = state.conf;
  if (!conf) return [h("p", {}, t("common.loading"))];
  const [tools, tokens] = await Promise.all([
    get<{ tools: ToolRow[] }>("setup/tools"),
    get<{ tokens: TokenRow[] }>("tokens"),
  ]);
  const out: HTMLElement[] = [
    h("h1", {}, t("setup.title")),
    h(
      "p",
      {},
      t("setup.base_url"),
      h("code", { id: "base-url" }, conf.base_url),
      " ",
      h("button", { type: "button", onclick: () => copy(conf.base_url) }, t("common.copy")),
    ),
    h(
      "p",
      { class: "muted" },
      t("setup.one_click"),
      h("code", {}, "fluxgate setup TOOL"),
      t("setup.in_terminal"),
    ),
    ...tools.tools.map(toolSection),
    h("h2", {}, t("setup.other_tools")),
  ];
  const writable = new Set(tools.tools.map((x) => x.id));
  for (const c of conf.clients.filter((c) => !writable.has(c.id))) {
    const text = h("pre", { class: "snippet", "data-client": c.id, tabindex: 0 }, "");
    const copyBtn = h(
      "button",
      { type: "button", disabled: true, onclick: () => copy(text.textContent ?? "") },
      t("common.copy"),
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
                notice(t("setup.token_made", { token: r.token_name, tool: c.title }));
              } catch (e) {
                showError(e);
              }
            },
          },
          t("setup.make_token"),
        ),
        " ",
        copyBtn,
        text,
      ),
    );
  }
  out.push(tokensSection(tokens.tokens));
  return out;
}

/** A small button that copies `text`. */
function copyButton(text: string): HTMLElement {
  return h(
    "button",
    {
      type: "button",
      class: "small copy",
      title: t("setup.copy_what", { text }),
      onclick: () => void copy(text),
    },
    t("common.copy"),
  );
}

export function settingsView(): HTMLElement[] {
  const conf = state.conf;
  if (!conf) return [h("p", {}, t("common.loading"))];
  return [
    h("h1", {}, t("settings.title")),
    h(
      "section",
      {},
      h("h2", {}, t("settings.routing")),
      h("p", {}, conf.paused ? t("settings.paused") : t("settings.on")),
      conf.paused
        ? h(
            "button",
            { type: "button", id: "resume", onclick: () => act(t("settings.resume"), () => post("resume")) },
            t("tray.menu.resume"),
          )
        : h(
            "button",
            { type: "button", id: "pause", onclick: () => act(t("settings.pause"), () => post("pause")) },
            t("tray.menu.pause"),
          ),
    ),
    h(
      "section",
      {},
      h("h2", {}, t("settings.where")),
      h(
        "dl",
        {},
        h("dt", {}, t("settings.listening")),
        h("dd", {}, h("code", {}, conf.base_url), copyButton(conf.base_url)),
        h("dt", {}, t("settings.config_file")),
        h(
          "dd",
          {},
          h("code", {}, conf.config_file ?? t("settings.none")),
          conf.config_file ? copyButton(conf.config_file) : null,
          conf.from_environment ? t("settings.from_env") : "",
        ),
        h("dt", {}, t("settings.data_dir")),
        h("dd", {}, h("code", {}, conf.data_dir), copyButton(conf.data_dir)),
        h("dt", {}, t("settings.shared")),
        conf.shared.redis === null
          ? h("dd", {}, t("settings.shared_none"))
          : h(
              "dd",
              {},
              t("settings.shared_redis"),
              h("code", {}, conf.shared.redis),
              conf.shared.up === false
                ? h("strong", { class: "error" }, t("settings.redis_down"))
                : t("settings.answering"),
            ),
        h("dt", {}, t("settings.request_log")),
        conf.shared.postgres === null
          ? h("dd", {}, t("settings.log_local"))
          : h(
              "dd",
              {},
              t("settings.log_pg"),
              h("code", {}, conf.shared.postgres),
              conf.shared.postgres_up === false
                ? h(
                    "strong",
                    { class: "error" },
                    t("settings.pg_down", { n: conf.shared.postgres_pending ?? 0 }),
                  )
                : t("settings.answering"),
            ),
        h("dt", {}, t("settings.keys")),
        h("dd", {}, t("settings.keys_where")),
      ),
      h("p", { class: "muted" }, t("settings.edits")),
    ),
    h(
      "section",
      {},
      h("h2", {}, t("settings.session")),
      h(
        "button",
        {
          type: "button",
          onclick: () =>
            act(t("settings.sign_out"), () => post("logout")).then(() => {
              forget();
              location.reload();
            }),
        },
        t("settings.sign_out_long"),
      ),
    ),
  ];
}
