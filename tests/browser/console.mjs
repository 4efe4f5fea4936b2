// The console end to end in Debian's headless Chromium: sign in with a one-time link, add two
// keys (into the keychain), see them healthy, make one hit a rate limit upstream and watch the
// dashboard show it cooling with a live countdown (no reload), edit a route and see the
// explain preview, make a client setup. Prints findings as JSON; screenshots go to SHOTS.
// Usage: node console.mjs  (reads E2E_* variables)
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
  out.keys_page_text = await page.textContent("main");
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

  // Edit a route and see the explain preview follow as you type; save it.
  await page.click("nav a[href='#routes']");
  const editor = "form.route-edit[data-route='m']";
  await page.waitForSelector(`${editor} .preview ol.order li`);
  out.preview_before = await page.$$eval(`${editor} .preview ol.order li`, (l) => l.map((e) => e.textContent));
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

  // Requests and usage.
  await page.click("nav a[href='#requests']");
  await page.waitForSelector("table.requests tbody tr");
  out.request_rows = await page.$$eval("table.requests tbody tr", (l) => l.length);
  out.usage_text = await page.textContent("main");
  await page.screenshot({ path: `${shots}/console-usage.png` });

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
  step("done");

  // The page's storage and DOM hold no key.
  out.dom = await page.content();
  out.storage = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  out.final_url = page.url();
  out.cookies = (await context.cookies()).map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite }));
} catch (e) {
  out.failure = String(e && e.stack ? e.stack : e);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + "\n");
