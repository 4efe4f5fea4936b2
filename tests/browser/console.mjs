// The console end to end in Debian's headless Chromium: sign in with a one-time link, add two
// keys (into the keychain), see them healthy, make one hit a rate limit upstream and watch the
// dashboard show it cooling with a live countdown (no reload), edit a route and see the
// explain preview, make a client setup. Prints findings as JSON; screenshots go to SHOTS.
// Usage: node console.mjs  (reads E2E_* variables)
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const base = env("E2E_BASE");
const login = env("E2E_LOGIN");
const fake = env("E2E_FAKE");
const token = env("E2E_TOKEN");
const keyWork = env("E2E_KEY_WORK");
const keySpare = env("E2E_KEY_SPARE");
const shots = env("E2E_SHOTS");

const out = { steps: [], console: [], errors: [] };
const step = (s) => out.steps.push(s);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on("console", (m) => out.console.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => out.errors.push(String(e)));
  page.setDefaultTimeout(15000);

  // Sign in: the link sets the session cookie and lands on the dashboard.
  await page.goto(login);
  await page.waitForSelector("h1:text('Dashboard')");
  await page.waitForSelector(".live.on");
  step("signed in, live");
  await page.waitForSelector("section.provider[data-provider='oa'] p.empty");
  await page.screenshot({ path: `${shots}/console-empty-provider.png` });

  // Add two keys from the keyboard, as a user would.
  await page.click("nav a[href='#keys']");
  await page.waitForSelector("form.add-key");
  // Before a key is pasted, the page says whether the keychain can take it.
  await page.waitForFunction(() => document.querySelector("form.add-key .source-note")?.textContent !== "");
  out.keychain_note = await page.textContent("form.add-key .source-note");
  // The key id's pattern runs (a pattern Chromium rejects would let anything through).
  await page.fill("form.add-key input[name='id']", "bad id!");
  out.bad_id_mismatch = await page.$eval("form.add-key input[name='id']", (e) => e.validity.patternMismatch);
  await page.fill("form.add-key input[name='id']", "good.id-1");
  out.good_id_mismatch = await page.$eval("form.add-key input[name='id']", (e) => e.validity.patternMismatch);
  for (const [id, secret] of [["work", keyWork], ["spare", keySpare]]) {
    await page.fill("form.add-key input[name='id']", id);
    await page.fill("form.add-key input[name='secret']", secret);
    await page.press("form.add-key input[name='secret']", "Enter");
    // Storing a key goes through the OS keychain (gnome-keyring over D-Bus), which can take
    // well over the default wait on a loaded 2-core CI machine.
    await page.waitForSelector(`tr[data-key='oa/${id}'] .badge[data-status='healthy']`, { timeout: 45_000 });
    out[`banner_${id}`] = await page.textContent("#banner");
    out[`secret_field_after_${id}`] = await page.inputValue("form.add-key input[name='secret']");
  }
  step("two keys added");
  // A key the server refuses: the reason shows at the form, and the pasted secret is kept.
  await page.fill("form.add-key input[name='id']", "typo");
  await page.fill("form.add-key input[name='secret']", "sk-has a space");
  await page.press("form.add-key input[name='secret']", "Enter");
  await page.waitForSelector("form.add-key .form-msg.error");
  out.add_key_error = await page.textContent("form.add-key .form-msg.error");
  out.secret_kept = await page.inputValue("form.add-key input[name='secret']");
  await page.fill("form.add-key input[name='secret']", "");
  out.keys_page_text = await page.textContent("main");
  // A provider from a preset, edited in place, then deleted, without touching TOML.
  await page.selectOption("form.add-provider select[name='preset']", "ollama");
  out.preset_fields = await page.$eval("form.add-provider", (f) =>
    [f.querySelector("[name='name']").value, f.querySelector("[name='kind']").value, f.querySelector("[name='base_url']").value]);
  out.preset_note = await page.textContent("form.add-provider .preset-note");
  await page.click("form.add-provider button[type='submit']");
  await page.waitForSelector("section.provider[data-provider='ollama']");
  await page.click("section.provider[data-provider='ollama'] .provider-actions button:text('Edit')");
  await page.fill("form.edit-provider[data-provider='ollama'] input[name='models']", "llama3.2, qwen2.5");
  await page.click("form.edit-provider[data-provider='ollama'] button[type='submit']");
  await page.waitForFunction(() =>
    document.querySelector("form.edit-provider[data-provider='ollama'] input[name='models']")?.value === "llama3.2, qwen2.5");
  page.once("dialog", (d) => void d.accept());
  await page.click("section.provider[data-provider='ollama'] .provider-actions button:text('Delete')");
  await page.waitForSelector("section.provider[data-provider='ollama']", { state: "detached" });
  step("provider preset, edit, delete");
  await page.screenshot({ path: `${shots}/console-keys.png` });

  // Test a key from the page.
  await page.click("tr[data-key='oa/spare'] button:text('Test')");
  await page.waitForFunction(() => /works|failed/.test(document.querySelector("#banner")?.textContent ?? ""));
  out.test_banner = await page.textContent("#banner");

  // The dashboard follows health live: rate-limit `work` upstream, send a request (it fails
  // over to `spare`), and watch `work` turn to cooling with a countdown, without a reload.
  await page.click("nav a[href='#dashboard']");
  await page.waitForSelector("tr[data-key='oa/work'] .badge[data-status='healthy']");
  const navigations = [];
  page.on("framenavigated", (f) => navigations.push(f.url()));
  await fetch(`${fake}/_fake/always/work`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ kind: "status", status: 429, headers: { "retry-after": "90" } }),
  });
  const r = await fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
  });
  out.failover_status = r.status;
  await page.waitForSelector("tr[data-key='oa/work'] .badge[data-status='cooling']");
  const cd = "tr[data-key='oa/work'] td.countdown span";
  out.countdown_1 = await page.textContent(cd);
  await page.waitForTimeout(2200);
  out.countdown_2 = await page.textContent(cd);
  out.reason = await page.textContent("tr[data-key='oa/work'] td:nth-child(3)");
  out.healthy_count = await page.textContent("#healthy-count");
  out.navigations = navigations;
  step("cooling shown live");
  await page.screenshot({ path: `${shots}/console-dashboard.png` });

  // Edit a route and see the explain preview follow as you type; save it. Arriving from the
  // bottom of a long page, the title is in view, not under the sticky header.
  await page.click("nav a[href='#keys']");
  await page.waitForSelector("form.add-key");
  await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
  await page.click("nav a[href='#routes']");
  await page.waitForSelector("main h1:text('Routes')");
  out.title_clear = await page.evaluate(() =>
    document.querySelector("main h1").getBoundingClientRect().top >= document.querySelector(".top").getBoundingClientRect().bottom);
  const editor = "form.route-edit[data-route='m']";
  await page.waitForSelector(`${editor} .preview ol.order li`);
  // Read-only until Edit: the targets and the strategy, explained.
  out.route_summary = await page.textContent("section.route[data-route='m'] .route-summary");
  out.route_fields_hidden = await page.$eval(`${editor} .fields`, (f) => f.hidden);
  await page.click("section.route[data-route='m'] button.edit-route");
  out.picker_options = await page.$$eval(`${editor} select[name='add-target'] option`, (l) => l.map((o) => o.value));
  out.preview_before = await page.$$eval(`${editor} .preview ol.order li`, (l) => l.map((e) => e.textContent));
  out.strategy_note = await page.textContent(`${editor} .strategy-note`);
  await page.fill(`${editor} textarea`, "oa/gpt-4o-mini\noa/gpt-4o");
  await page.waitForFunction((sel) => {
    const li = document.querySelector(`${sel} .preview ol.order li`);
    return li && li.textContent.includes("gpt-4o-mini");
  }, editor);
  out.preview_after = await page.$$eval(`${editor} .preview ol.order li`, (l) => l.map((e) => e.textContent));
  out.preview_skipped = await page.$$eval(`${editor} .preview ul.skipped li`, (l) => l.map((e) => e.textContent));
  await page.screenshot({ path: `${shots}/console-routes.png` });
  // An invalid draft says why, live.
  await page.fill(`${editor} textarea`, "ghost/model");
  await page.waitForSelector(`${editor} .preview p.error`);
  out.preview_error = await page.textContent(`${editor} .preview p.error`);
  await page.fill(`${editor} textarea`, "oa/gpt-4o-mini\noa/gpt-4o");
  await page.waitForFunction((sel) => document.querySelector(`${sel} .preview ol.order`), editor);
  await page.click(`${editor} button[type='submit']`);
  await page.waitForFunction(() => /saved/.test(document.querySelector("#banner")?.textContent ?? ""));
  out.route_saved_banner = await page.textContent("#banner");
  step("route edited");

  // The request inspector: the failover's attempts, filters kept in the address, rows that
  // arrive live, the export.
  const rowSel = "table.requests tbody tr[data-request]";
  await page.click("nav a[href='#requests']");
  await page.waitForSelector(rowSel);
  out.request_rows = await page.$$eval(rowSel, (l) => l.length);
  await page.check("form.filters input[name='retried']");
  await page.waitForSelector("table.requests[data-filters='retried=1']");
  out.inspector_hash = await page.evaluate(() => location.hash);
  out.retried_rows = await page.$$eval(rowSel, (l) => l.length);
  await page.click(`${rowSel} button.disclose`);
  await page.waitForSelector("tr.detail:not([hidden]) table.attempts");
  out.attempts = await page.$$eval("tr.detail:not([hidden]) table.attempts tbody tr", (l) =>
    l.map((e) => ({ outcome: e.dataset.outcome, text: e.textContent })));
  await page.waitForSelector("tr.detail:not([hidden]) .kept-body pre");
  out.keeping_notice = await page.textContent("p.notice.keeping");
  [out.kept_request, out.kept_response] = await page.$$eval("tr.detail:not([hidden]) .kept-body pre", (l) =>
    l.map((e) => e.textContent));
  out.requests_text = await page.textContent("main");
  await page.screenshot({ path: `${shots}/console-requests.png`, fullPage: true });
  await page.click("form.filters a:text('Clear filters')");
  await page.waitForSelector("table.requests[data-filters='']");
  const before = await page.$$eval(rowSel, (l) => l.length);
  await fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "live" }] }),
  });
  await page.waitForFunction(([sel, n]) => document.querySelectorAll(sel).length > n, [rowSel, before], { timeout: 10_000 });
  out.live_rows = [before, await page.$$eval(rowSel, (l) => l.length)];
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("button.export")]);
  out.export_lines = readFileSync(await download.path(), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  step("inspector");

  // Usage: charts with a period picker; a bar and a count open the inspector filtered to
  // what was clicked.
  await page.click("nav a[href='#usage']");
  await page.waitForSelector("section.chart a[href^='#requests?route=']");
  out.usage_charts = await page.$$eval("figure.chart-figure figcaption strong", (l) => l.map((e) => e.textContent));
  await page.click(".span-picker a[href='#usage?span=7d']");
  await page.waitForSelector("main h1:text('Usage (last 7 days)')");
  out.usage_7d_bars = await page.$$eval("figure.chart-figure:first-of-type svg a", (l) => l.length);
  await page.click(".span-picker a[href='#usage?span=24h']");
  await page.waitForSelector("main h1:text('Usage (last 24 h)')");
  out.usage_text = await page.textContent("main");
  await page.screenshot({ path: `${shots}/console-usage.png` });
  await page.click("figure.chart-figure:first-of-type svg a");
  await page.waitForSelector("table.requests[data-filters^='since_ms=']");
  out.bar_rows = await page.$$eval(rowSel, (l) => l.length);
  out.bar_window = await page.textContent("form.filters .time-window");
  await page.click("nav a[href='#usage']");
  await page.waitForSelector("section.chart a[href^='#requests?route=']");
  // A budget set and removed from the page.
  await page.selectOption("form.budget-edit select[name='kind']", "provider");
  await page.fill("form.budget-edit input[name='name']", "oa");
  await page.fill("form.budget-edit input[name='daily_usd']", "5");
  await page.click("form.budget-edit button[type='submit']");
  await page.waitForSelector("section.budgets tr[data-scope='provider oa']");
  out.budget_row = await page.textContent("section.budgets tr[data-scope='provider oa']");
  page.once("dialog", (d) => void d.accept());
  await page.click("section.budgets tr[data-scope='provider oa'] button:text('Remove')");
  await page.waitForSelector("section.budgets tr[data-scope='provider oa']", { state: "detached" });
  await page.click("section.chart a[href^='#requests?route=']");
  await page.waitForSelector("table.requests[data-filters='route=m']");
  out.usage_link_rows = await page.$$eval(rowSel, (l) => l.length);

  // Client setup: the tools Fluxgate configures in one click are listed with a preview; an SDK
  // gets its setup text with a token made for it.
  await page.click("nav a[href='#setup']");
  await page.waitForSelector("section.tool[data-tool='claude-code']");
  await page.click("section.tool[data-tool='claude-code'] button.preview");
  await page.waitForSelector("pre.diff[data-tool='claude-code']:not([hidden])");
  out.claude_preview = await page.textContent("pre.diff[data-tool='claude-code']");
  await page.click("section:has(h3:text('Anthropic SDK')) button:text('Make a token and show the setup')");
  await page.waitForFunction(() => document.querySelector("pre[data-client='anthropic-sdk']")?.textContent?.includes("ANTHROPIC_BASE_URL"));
  out.setup_text = await page.textContent("pre[data-client='anthropic-sdk']");
  await page.screenshot({ path: `${shots}/console-setup.png` });
  // The client tokens: the one the tests use was used just now; the new one never; revoke it.
  await page.click("nav a[href='#routes']");
  await page.click("nav a[href='#setup']");
  await page.waitForSelector("section.tokens tr[data-token='e2e']");
  out.tokens_listed = await page.$$eval("section.tokens tr[data-token]", (l) =>
    l.map((r) => [r.dataset.token, r.children[2].textContent]));
  const fresh = await page.getAttribute("section.tokens tr[data-token]:not([data-token='e2e'])", "data-token");
  page.once("dialog", (d) => void d.accept());
  await page.click(`section.tokens tr[data-token='${fresh}'] button:text('Revoke')`);
  await page.waitForSelector(`section.tokens tr[data-token='${fresh}']`, { state: "detached" });
  out.revoked_token = fresh;
  out.tokens_after = await page.$$eval("section.tokens tr[data-token]", (l) => l.map((r) => r.dataset.token));

  // Keyboard: the skip link is the first stop, and it lands on the content.
  await page.click("nav a[href='#settings']");
  await page.waitForSelector("h1:text('Settings')");
  await page.screenshot({ path: `${shots}/console-settings.png` });
  await page.reload();
  await page.waitForSelector("h1:text('Settings')");
  await page.keyboard.press("Tab");
  out.first_tab_stop = await page.evaluate(() => document.activeElement?.textContent);
  // Enter on the skip link moves focus to the content.
  await page.keyboard.press("Enter");
  out.after_skip = await page.evaluate(() => document.activeElement?.id);

  // Opens a view from the navigation and waits until it is drawn.
  const VIEWS = ["dashboard", "keys", "routes", "requests", "usage", "setup", "settings"];
  const visit = async (view) => {
    await page.click(`nav a[href='#${view}']`);
    await page.waitForFunction((v) => document.querySelector(`nav a[href='#${v}'][aria-current='page']`) && document.querySelector("main h1"), view);
    await page.waitForTimeout(150);
  };

  // Every view in light and dark, at a wide window and at the desktop window's minimum width
  // (720 px): a screenshot each, and no view may scroll sideways.
  out.overflow = [];
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const width of [1440, 720]) {
      await page.setViewportSize({ width, height: 900 });
      for (const view of VIEWS) {
        await visit(view);
        const wide = await page.evaluate(() => {
          const d = document.documentElement;
          if (d.scrollWidth <= d.clientWidth) return null;
          // The widest element that sticks out, to say what to fix.
          let worst = null;
          for (const el of document.querySelectorAll("main *")) {
            const r = el.getBoundingClientRect();
            if (r.right > d.clientWidth + 1 && (!worst || r.right > worst.right))
              worst = { right: Math.round(r.right), tag: el.tagName, cls: el.className, text: (el.textContent || "").slice(0, 40) };
          }
          return { scrollWidth: d.scrollWidth, clientWidth: d.clientWidth, worst };
        });
        if (wide) out.overflow.push({ view, scheme, width, ...wide });
        await page.screenshot({ path: `${shots}/views/${view}-${scheme}-${width}.png`, fullPage: true });
      }
    }
  }
  await page.emulateMedia({ colorScheme: "light" });
  await page.setViewportSize({ width: 1280, height: 800 });

  // One key table that tells the truth: revived, `work` shows no reason, only its last error
  // as muted history; each key shows its last 24 hours.
  await page.click("nav a[href='#dashboard']");
  // The health strip shows when `work` was cooling, and why.
  const strip = "section.strips .strip-row[data-key='oa/work'] rect.strip-seg[data-status='cooling']";
  await page.waitForSelector(strip, { timeout: 15_000 });
  out.strip_title = await page.textContent(`${strip} title`);
  await page.click("section.dash-charts a[data-span='24h']");
  await page.waitForSelector("section.dash-charts figcaption strong:text('Requests, last 24 h')");
  out.dash_24h_bars = await page.$$eval("section.dash-charts svg a", (l) => l.length);
  // A stretch links to the inspector for that key and time (read, not clicked: a stretch of
  // seconds in a day is a sliver).
  out.strip_link = await page.$eval(strip, (el) => el.parentElement.getAttribute("href"));
  await page.click("section.dash-charts a[data-span='1h']");
  await page.waitForSelector("tr[data-key='oa/work'] button:text('Revive')");
  out.revive_title = await page.getAttribute("tr[data-key='oa/work'] button:text('Revive')", "title");
  await page.click("tr[data-key='oa/work'] button:text('Revive')");
  await page.waitForSelector("tr[data-key='oa/work'] .badge[data-status='healthy']");
  out.revived_reason = await page.textContent("tr[data-key='oa/work'] td:nth-child(3)");
  out.revived_msg = await page.textContent("tr[data-key='oa/work'] td.msg");
  out.revived_msg_class = await page.getAttribute("tr[data-key='oa/work'] td.msg", "class");
  out.healthy_has_revive = await page.$$eval("tr[data-key='oa/spare'] button", (l) => l.map((b) => b.textContent));
  await page.waitForSelector("tr[data-key='oa/spare'] td.key-usage a", { timeout: 15_000 });
  out.spare_usage = await page.textContent("tr[data-key='oa/spare'] td.key-usage");
  out.spend_today = await page.textContent("#spend-today");
  out.dash_chart = await page.$$eval("section.dash-charts svg a", (l) => l.length);
  step("zh-CN");

  // English and Chinese: the header's picker redraws every view in Simplified Chinese, keeps
  // the choice over a reload, and nothing overflows at 720 px. Screenshots of both languages.
  await page.selectOption("#lang", "zh-CN");
  await page.waitForSelector("nav a[href='#dashboard']:text('仪表盘')");
  out.zh_html_lang = await page.getAttribute("html", "lang");
  await page.reload();
  await page.waitForSelector("nav a[href='#keys']:text('服务商与密钥')");
  out.zh_after_reload = await page.inputValue("#lang");
  out.zh = {};
  for (const width of [1440, 720]) {
    await page.setViewportSize({ width, height: 900 });
    for (const view of VIEWS) {
      await visit(view);
      const d = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
      if (d[0] > d[1]) out.overflow.push({ view, lang: "zh-CN", width, scrollWidth: d[0], clientWidth: d[1] });
      if (width === 1440) {
        out.zh[view] = {
          h1: await page.textContent("main h1"),
          main: await page.innerText("main"),
          // The words a user acts on: buttons, column heads, labels, placeholders, options.
          controls: await page.$$eval("main button, main th, main label, main option, main summary, main [placeholder]", (els) =>
            els.map((e) => (e.getAttribute("placeholder") ?? e.innerText ?? "").trim()).filter((t) => t),
          ),
        };
        await page.screenshot({ path: `${shots}/i18n/${view}-zh-CN.png`, fullPage: true });
        await page.selectOption("#lang", "en");
        await page.waitForSelector(`nav a[href='#${view}'][aria-current='page']:not(:text-matches("[\u4e00-\u9fff]"))`);
        await page.waitForTimeout(150);
        await page.screenshot({ path: `${shots}/i18n/${view}-en.png`, fullPage: true });
        await page.selectOption("#lang", "zh-CN");
        await page.waitForSelector("nav a[href='#dashboard']:text('仪表盘')");
      }
    }
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.selectOption("#lang", "en");
  await page.waitForSelector("nav a[href='#dashboard']:text('Dashboard')");
  // A browser whose preferred language is Chinese gets Chinese on its first visit, before
  // signing in.
  const zhContext = await browser.newContext({ locale: "zh-CN", viewport: { width: 1280, height: 800 } });
  const zhPage = await zhContext.newPage();
  await zhPage.goto(`${base}/admin/`);
  await zhPage.waitForSelector("main h1");
  out.zh_first_visit_h1 = await zhPage.textContent("main h1");
  await zhContext.close();
  step("done");

  // The page's storage and DOM hold no key.
  out.dom = await page.content();
  out.storage = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  out.final_url = page.url();
  out.cookies = (await context.cookies()).map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite }));

  // Signed out, every view says to sign in (none says "Loading…" or "No providers yet").
  await page.click("nav a[href='#settings']");
  await page.click("button:text('Sign out of this console')");
  await page.waitForSelector("main h1:text('Sign in')");
  out.signed_out = [];
  for (const view of ["dashboard", "keys", "routes", "requests", "usage", "setup", "settings"]) {
    await page.click(`nav a[href='#${view}']`);
    await page.waitForFunction((v) => document.querySelector(`nav a[href='#${v}'][aria-current='page']`), view);
    await page.waitForTimeout(100);
    out.signed_out.push([view, await page.textContent("main h1")]);
  }
} catch (e) {
  out.failure = String(e && e.stack ? e.stack : e);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + "\n");
