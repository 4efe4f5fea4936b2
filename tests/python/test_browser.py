"""A hostile web page in Debian's headless Chromium (driven by playwright-core) attacks the
router on localhost (RELIABILITY.md 3): cross-origin `fetch` with and without CORS, a
`text/plain` form POST, image GETs, against the proxy and the admin API, and a DNS-rebinding
style navigation under a foreign host name. Even with the real client token in the page, every
attempt fails and the upstream sees nothing."""

import http.server
import json
import os
import subprocess
import threading
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BROWSER = ROOT / "tests" / "browser"

PAGE = """<!doctype html>
<html><body>
<iframe name="sink" id="sink"></iframe>
<script>
const T = "__TARGET__", token = "__TOKEN__", admin = "__ADMIN__";
window.__results = {};
const R = window.__results;
const chat = JSON.stringify({model: "gpt-4o", messages: [{role: "user", content: "hi"}]});
async function attempt(name, fn) {
  try { R[name] = await fn(); } catch (e) { R[name] = "blocked: " + e.name; }
}
function image(url) {
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => resolve("loaded");
    img.onerror = () => resolve("blocked: error");
    img.src = url;
  });
}
function form(action, name, value) {
  return new Promise((resolve) => {
    const f = document.createElement("form");
    f.method = "POST"; f.action = action; f.enctype = "text/plain"; f.target = "sink";
    const i = document.createElement("input");
    i.type = "hidden"; i.name = name; i.value = value;
    f.appendChild(i); document.body.appendChild(f);
    const sink = document.getElementById("sink");
    const timer = setTimeout(() => resolve("sent"), 3000);
    sink.onload = () => { clearTimeout(timer); resolve("sent"); };
    f.submit();
  });
}
(async () => {
  await attempt("cors_chat_with_token", async () => {
    const r = await fetch(T + "/v1/chat/completions", {method: "POST",
      headers: {"content-type": "application/json", "authorization": "Bearer " + token}, body: chat});
    return "read status " + r.status;
  });
  await attempt("simple_text_plain_chat", async () => {
    const r = await fetch(T + "/v1/chat/completions", {method: "POST", mode: "no-cors",
      headers: {"content-type": "text/plain"}, body: chat});
    return "opaque " + r.type;
  });
  await attempt("simple_text_plain_messages_with_token_in_body", async () => {
    const r = await fetch(T + "/v1/messages?key=" + token, {method: "POST", mode: "no-cors",
      headers: {"content-type": "text/plain"},
      body: JSON.stringify({model: "claude-work", max_tokens: 5, messages: [{role: "user", content: "hi"}]})});
    return "opaque " + r.type;
  });
  await attempt("cors_admin_keys_with_token", async () => {
    const r = await fetch(T + "/admin/api/keys", {headers: {"authorization": "Bearer " + admin}});
    return "read status " + r.status + " " + (await r.text()).slice(0, 80);
  });
  await attempt("no_cors_admin_revive", async () => {
    const r = await fetch(T + "/admin/api/keys/oa/good/revive", {method: "POST", mode: "no-cors"});
    return "opaque " + r.type;
  });
  await attempt("cors_models_read", async () => {
    const r = await fetch(T + "/v1/models");
    return "read status " + r.status;
  });
  // Codex's WebSocket transport: a page can open sockets cross-origin (no CORS), so the
  // Origin check on the upgrade is all that stands between it and the router.
  R.websocket_responses = await new Promise((resolve) => {
    let ws;
    try {
      ws = new WebSocket(T.replace("http://", "ws://") + "/v1/responses?key=" + token);
    } catch (e) {
      resolve("blocked: " + e.name);
      return;
    }
    const timer = setTimeout(() => resolve("no answer"), 3000);
    ws.onopen = () => {
      clearTimeout(timer);
      ws.send(JSON.stringify({type: "response.create", model: "gpt-4o", input: "hi"}));
      setTimeout(() => resolve("opened"), 500);
    };
    ws.onerror = () => { clearTimeout(timer); resolve("blocked: error"); };
  });
  R.form_post_chat = await form(T + "/v1/chat/completions", chat.slice(0, -1) + ', "x": "', '"}');
  R.form_post_admin = await form(T + "/admin/api/keys/oa/good/revive", "a", "b");
  R.image_models = await image(T + "/v1/models?key=" + token);
  R.image_admin = await image(T + "/admin/api/keys");
  R.image_gemini = await image(T + "/v1beta/models/gpt-4o:generateContent?key=" + token);
  window.__done = true;
})();
</script>
</body></html>
"""


def open_page(url: str, timeout_ms: int = 20000) -> dict:
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    assert Path(chromium).exists(), f"{chromium} is missing: run scripts/deps.sh test (installs Debian's chromium)"
    assert (BROWSER / "node_modules" / "playwright-core").exists(), "run scripts/deps.sh test (npm ci in tests/browser)"
    env = dict(os.environ)
    env["CHROMIUM_ARGS"] = "--host-resolver-rules=MAP evil.test 127.0.0.1, MAP rebind.test 127.0.0.1"
    out = subprocess.run(["node", str(BROWSER / "open_page.mjs"), url, str(timeout_ms)], capture_output=True, text=True, env=env, timeout=90, cwd=BROWSER)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


class _Page(http.server.BaseHTTPRequestHandler):
    html = b""

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.end_headers()
        self.wfile.write(self.html)

    def log_message(self, *args):
        pass


def serve_page(html: str):
    handler = type("Handler", (_Page,), {"html": html.encode()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_hostile_page_in_chromium_cannot_use_the_router(env):
    fake, fg, keys = env
    admin = (fg.data / "admin-token").read_text().strip()
    html = PAGE.replace("__TARGET__", fg.url).replace("__TOKEN__", fg.token).replace("__ADMIN__", admin)
    server = serve_page(html)
    try:
        port = server.server_address[1]
        # The attacker's page on a foreign site name (resolved to loopback inside Chromium).
        seen = open_page(f"http://evil.test:{port}/")
    finally:
        server.shutdown()
    r = seen["results"]
    assert seen["status"] == 200, seen
    # Everything whose answer a page could read is blocked outright ...
    for name in ["cors_chat_with_token", "cors_admin_keys_with_token", "cors_models_read"]:
        assert r[name].startswith("blocked"), (name, r)
    # ... images fail to load, the rest is opaque to the page ...
    for name in ["image_models", "image_admin", "image_gemini", "websocket_responses"]:
        assert r[name] == "blocked: error", (name, r)
    # ... and nothing reached an upstream or changed state.
    assert fake.log() == [], fake.log()
    log = (fg.workdir / "serve.log").read_text()
    assert "refused a cross-origin request" in log
    assert "Responses WebSocket opened" not in log, log
    # The same token works from a real client (so the page failed only because it is a page).
    req = urllib.request.Request(fg.url + "/v1/chat/completions", data=json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).encode(), headers={"authorization": "Bearer " + fg.token, "content-type": "application/json"})
    assert urllib.request.urlopen(req).status == 200
    assert fake.log(), "the control request did not reach the upstream"


def test_dns_rebinding_names_are_refused_in_the_browser(env):
    fake, fg, _ = env
    port = fg.url.rsplit(":", 1)[1]
    for path in ["/healthz", "/v1/models", "/admin/api/keys"]:
        seen = open_page(f"http://rebind.test:{port}{path}", 0)
        assert seen["status"] == 403, (path, seen)
    assert fake.log() == []
    assert "DNS rebinding guard" in (fg.workdir / "serve.log").read_text()
