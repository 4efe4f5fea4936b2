// Opens one page in Debian's headless Chromium and prints what the page reports.
// Usage: node open_page.mjs URL [TIMEOUT_MS]
// The page sets `window.__done = true` when it has finished and leaves its findings in
// `window.__results`; this prints them, the navigation's HTTP status and the page's console as
// JSON on stdout. With TIMEOUT_MS 0 it only loads the page and reports the status.
import { chromium } from "playwright-core";

const url = process.argv[2];
const timeout = Number(process.argv[3] || 20000);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-quic",
    // Extra switches, e.g. --host-resolver-rules to give loopback servers other names.
    ...(process.env.CHROMIUM_ARGS ? process.env.CHROMIUM_ARGS.split("\n") : []),
  ],
});
try {
  const page = await browser.newPage();
  const console_lines = [];
  page.on("console", (m) => console_lines.push(m.text()));
  const response = await page.goto(url);
  const status = response ? response.status() : null;
  let results = null;
  if (timeout > 0) {
    await page.waitForFunction(() => window.__done === true, null, { timeout });
    results = await page.evaluate(() => window.__results);
  }
  process.stdout.write(JSON.stringify({ status, results, console: console_lines }) + "\n");
} finally {
  await browser.close();
}
