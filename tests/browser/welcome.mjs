// The console's first run in Debian's headless Chromium: signed in to a Fluxgate with no config
// file and no key, the page opens on the welcome page, lists the key found on the machine (by
// provider, last four characters and where), stores the ticked one, then sets up the tool found.
// Prints findings as JSON. Usage: node welcome.mjs (reads E2E_* variables)
import { chromium } from "playwright-core";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const out = { steps: [], errors: [] };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic"],
});
try {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  page.on("pageerror", (e) => out.errors.push(String(e)));
  page.setDefaultTimeout(15000);
  await page.goto(env("E2E_LOGIN"));
  await page.waitForSelector("h1:text('Welcome to Fluxgate')");
  out.steps.push("welcome");
  out.found = await page.$$eval("ul.found li", (lis) => lis.map((l) => l.textContent.trim()));
  out.checked_before = await page.$$eval("input[name=key]:checked", (x) => x.length);
  await page.screenshot({ path: `${env("E2E_SHOTS")}/console-welcome.png` });
  // Submitting with nothing ticked stores nothing and says so.
  await page.click("form.welcome-keys button[type=submit]");
  out.empty_submit = await page.textContent("p.form-msg");
  await page.check("input[name=key]");
  await page.click("form.welcome-keys button[type=submit]");
  await page.waitForSelector("#welcome-tools section.tool[data-tool='codex']");
  out.stored = await page.textContent("p.form-msg");
  out.steps.push("stored");
  await page.click("section.tool[data-tool='codex'] button.preview");
  await page.waitForSelector("pre.diff[data-tool='codex']:not([hidden])");
  out.preview = await page.textContent("pre.diff[data-tool='codex']");
  await page.click("section.tool[data-tool='codex'] button.apply");
  await page.waitForFunction(() => document.querySelector("section.tool[data-tool='codex'] .badge")?.dataset.configured === "true");
  out.setup_msg = await page.textContent("section.tool[data-tool='codex'] p.form-msg");
  out.steps.push("codex set up");
  await page.screenshot({ path: `${env("E2E_SHOTS")}/console-welcome-done.png` });
  out.dom = await page.content();
  await page.click("#welcome-done");
  await page.waitForSelector("h1:text('Dashboard')");
  out.steps.push("done");
} catch (e) {
  out.failure = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
