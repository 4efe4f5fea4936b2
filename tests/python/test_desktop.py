"""The desktop app (target/debug/fluxgate-app) under Xvfb with a private D-Bus session: the
window appears and is freed when closed, the tray registers with the right title and its menu
items act (pause, provider toggle, copy base URL, open console, quit with a drain), and a key's
cooldown produces exactly one notification. Screenshots go to target/screenshots/."""

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, TARGET, Fake, canary
from desktop import Desktop, cmdline, descendants

APP = TARGET / "fluxgate-app"
SHOTS = ROOT / "target" / "screenshots"


def http(url, body=None, token=None, method=None, timeout=30):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers, method=method or ("POST" if data else "GET"))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


class App:
    def __init__(self, desk: Desktop, fake: Fake, keys: dict):
        assert APP.exists(), f"{APP} is missing: scripts/test.sh builds it (cargo build --workspace --bins)"
        self.dir = Path(desk.tmp)
        self.config = self.dir / "config.toml"
        self.config.write_text(
            "# desktop test config (this comment must survive tray edits)\n"
            "[providers.oa]\n"
            'kind = "openai"\n'
            f'base_url = "{fake.url}/v1"\n'
            'keys = [{ id = "a", secret = "env:FG_KEY_A" }, { id = "b", secret = "env:FG_KEY_B" }]\n\n'
            "[routes.m]\n"
            'targets = ["oa/gpt-4o"]\n'
        )
        env = dict(desk.env, FG_KEY_A=keys["ka"], FG_KEY_B=keys["kb"], FLUXGATE_LOG="info,fluxgate_app=debug")
        self.env = env
        self.err = open(self.dir / "app.err", "w")
        self.proc = subprocess.Popen([str(APP), "--config", str(self.config), "--data-dir", str(self.dir / "data"),
                                      "--listen", "127.0.0.1:0"], env=env, stdout=subprocess.PIPE,
                                     stderr=self.err, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), f"the app did not start: {line!r} {self.log()}"
        self.url = line.split("listening on ", 1)[1].strip()
        self.admin = (self.dir / "data" / "admin-token").read_text().strip()
        status, body = http(self.url + "/admin/api/tokens", {"name": "desktop-test"}, self.admin)
        assert status == 201, body
        self.token = body["token"]

    def log(self) -> str:
        if not self.err.closed:
            self.err.flush()
        return (self.dir / "app.err").read_text()[-4000:]

    def chat(self, model="m", timeout=30):
        return http(self.url + "/v1/chat/completions",
                    {"model": model, "messages": [{"role": "user", "content": "hi"}]}, self.token, timeout=timeout)

    def webkit(self) -> list:
        return [c for c in descendants(self.proc.pid) if "WebKit" in cmdline(c) or "--console-window" in cmdline(c)]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.err.close()


@pytest.fixture
def desktop():
    d = Desktop()
    d.start_mocks()
    yield d
    d.close()


def test_window_tray_menu_and_one_notification_per_cooldown(desktop):
    keys = {"ka": canary(), "kb": canary()}
    fake = Fake(keys)
    app = App(desktop, fake, keys)
    try:
        # The window appears with the console in it.
        desktop.wait_for(lambda: desktop.windows("^Fluxgate$"), 30, "the console window")
        item = desktop.tray_item(app.proc.pid)
        props = desktop.wait_for(lambda: (p := desktop.tray_props(item)).get("XAyatanaLabel", "").endswith("2/2 keys healthy") and p,
                                 10, "the tray title")
        assert props["XAyatanaLabel"] == "Fluxgate: 2/2 keys healthy", props
        healthy_icon = props.get("IconName")
        menu = desktop.menu(item)
        for label in ["2/2 keys healthy", "Pause routing", "Open console", f"Copy base URL ({app.url})",
                      "Set up a tool", "Set up Claude Code", "Set up Codex CLI", "Set up Gemini CLI", "Set up opencode",
                      "Copy client setup", "Start at login", "Quit Fluxgate"]:
            assert label in menu, f"{label!r} not in {list(menu)}"
        provider = [label for label in menu if label.startswith("oa")]
        assert provider == ["oa — 2/2 keys usable"] and menu[provider[0]][1] == 1, menu
        time.sleep(1.5)  # let the dashboard render before the picture
        desktop.screenshot(SHOTS / "desktop-window.png")

        # Pause from the menu: requests are refused, the tray says so; resume.
        desktop.click(item, "Pause routing")
        desktop.wait_for(lambda: "paused" in desktop.tray_props(item).get("XAyatanaLabel", ""), 10, "a paused tray")
        status, body = app.chat()
        assert (status, body["error"]["type"]) == (503, "routing_paused"), body
        assert desktop.tray_props(item).get("IconName") != healthy_icon, "the paused icon differs"
        desktop.click(item, "Resume routing")
        desktop.wait_for(lambda: desktop.tray_props(item).get("XAyatanaLabel") == "Fluxgate: 2/2 keys healthy", 10,
                         "the tray to resume")
        assert app.chat()[0] == 200

        # Copy base URL puts it on the clipboard.
        desktop.click(item, "Copy base URL")
        desktop.wait_for(lambda: desktop.clipboard().strip() == app.url, 10, "the base URL on the clipboard")

        # The provider toggle edits the config file (comments kept) and applies at once.
        desktop.click(item, "oa — ")
        desktop.wait_for(lambda: "oa — disabled" in desktop.menu(item), 10, "the provider to show disabled")
        text = app.config.read_text()
        assert text.startswith("# desktop test config (this comment must survive tray edits)\n"), text
        assert "enabled = false" in text, text
        status, body = app.chat()
        assert status != 200, body
        desktop.click(item, "oa — ")
        desktop.wait_for(lambda: "oa — 2/2 keys usable" in desktop.menu(item), 10, "the provider to come back")
        assert "enabled = false" not in app.config.read_text()
        assert app.chat()[0] == 200

        # "Set up Codex CLI" writes Codex's own config (a token made for it) and says so.
        codex = Path(desktop.env["HOME"]) / ".codex" / "config.toml"
        notes_before = len(desktop.notifications())
        desktop.click(item, "Set up Codex CLI")
        desktop.wait_for(lambda: codex.exists() and 'model_provider = "fluxgate"' in codex.read_text(), 15,
                         "Codex's config to be written")
        assert f'base_url = "{app.url}/v1"' in codex.read_text() and oct(codex.stat().st_mode & 0o777) == "0o600"
        setup_notes = desktop.wait_for(lambda: desktop.notifications()[notes_before:] or None, 10, "the setup note")
        assert setup_notes[0][1] == "Codex CLI now uses Fluxgate", setup_notes
        assert "fgk_" not in setup_notes[0][2]

        # A rate limit on key a: the next request fails over to b, the tray counts 1/2, and the
        # cooldown gives exactly one notification, however many requests follow.
        before = len(desktop.notifications())
        fake.always("ka", {"kind": "status", "status": 429, "headers": {"retry-after": "120"}})
        for _ in range(6):
            assert app.chat()[0] == 200
        desktop.wait_for(lambda: desktop.tray_props(item).get("XAyatanaLabel") == "Fluxgate: 1/2 keys healthy", 10,
                         "the tray to count the cooling key")
        assert desktop.tray_props(item).get("IconName") != healthy_icon, "the degraded icon differs"
        notes = desktop.wait_for(lambda: desktop.notifications()[before:] or None, 10, "a notification")
        time.sleep(2.5)  # a second, duplicate notification would have arrived by now
        notes = desktop.notifications()[before:]
        assert len(notes) == 1, notes
        app_name, summary, body = notes[0]
        assert (app_name, summary) == ("Fluxgate", "oa/a is cooling down"), notes
        assert "rate limited" in body and "retried in" in body, body
        for k in keys.values():
            assert k[:12] not in summary + body
        desktop.screenshot(SHOTS / "desktop-window-cooling.png")

        # Closing the window frees the webview (its process and WebKit's exit); the router and
        # the tray run on; "Open console" brings a new window.
        assert app.webkit(), "WebKit processes run while the window is open"
        (wid,) = desktop.windows("^Fluxgate$")
        desktop.close_window(wid)
        desktop.wait_for(lambda: not desktop.windows("^Fluxgate$"), 10, "the window to close")
        desktop.wait_for(lambda: not app.webkit(), 15, "the WebKit processes to exit")
        assert app.proc.poll() is None, app.log()
        assert app.chat()[0] == 200
        # One instance: a second start opens the first one's window and exits.
        second = subprocess.run([str(APP), "--config", str(app.config), "--data-dir", str(app.dir / "data"),
                                 "--listen", "127.0.0.1:0"], env=app.env, capture_output=True, text=True, timeout=30)
        assert second.returncode == 0, second.stderr[-2000:]
        assert "listening on" not in second.stdout, second.stdout
        desktop.wait_for(lambda: desktop.windows("^Fluxgate$"), 10, "the window to reopen")
        # "Open console" with the window open raises it; it does not make a second one.
        desktop.click(item, "Open console")
        time.sleep(1.5)
        assert len(desktop.windows("^Fluxgate$")) == 1
        desktop.screenshot(SHOTS / "desktop-window-reopened.png")

        # Quit drains: a request in flight (the upstream answers after 2.5 s) completes, then
        # the process exits 0.
        fake.script("kb", [{"kind": "stall_after", "events": 0, "ms": 2500}])
        fake.always("ka", {"kind": "status", "status": 429, "headers": {"retry-after": "120"}})
        result = {}
        t = threading.Thread(target=lambda: result.update(r=app.chat(timeout=30)))
        t.start()
        time.sleep(0.8)
        desktop.click(item, "Quit Fluxgate")
        t.join(30)
        assert result["r"][0] == 200, result
        assert app.proc.wait(timeout=20) == 0, app.log()
    finally:
        app.stop()
        fake.proc.terminate()
    log = app.log()
    for k in keys.values():
        assert k[:12] not in log


def test_a_missing_notification_daemon_is_logged_once_and_the_app_runs_on():
    d = Desktop()
    try:
        # Only the tray watcher: no org.freedesktop.Notifications on this bus.
        d.procs.append(subprocess.Popen(["/usr/bin/python3", "-m", "dbusmock", "org.kde.StatusNotifierWatcher",
                                         "/StatusNotifierWatcher", "org.kde.StatusNotifierWatcher"], env=d.env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        d.wait_for(lambda: d.has_name("org.kde.StatusNotifierWatcher"), 15, "the watcher")
        w = ["-d", "org.kde.StatusNotifierWatcher", "-o", "/StatusNotifierWatcher"]
        d.gdbus(*w, "-m", "org.freedesktop.DBus.Mock.AddMethod", "org.kde.StatusNotifierWatcher",
                "RegisterStatusNotifierItem", "s", "", "")
        keys = {"ka": canary(), "kb": canary()}
        fake = Fake(keys)
        app = App(d, fake, keys)
        try:
            fake.always("ka", {"kind": "status", "status": 429, "headers": {"retry-after": "120"}})
            fake.always("kb", {"kind": "status", "status": 429, "headers": {"retry-after": "120"}})
            for _ in range(3):
                app.chat()
            time.sleep(2)
            assert app.proc.poll() is None, app.log()
            Desktop.wait_for(lambda: "desktop notifications are unavailable" in app.log(), 40, "the log line")
            time.sleep(1)
            assert app.log().count("desktop notifications are unavailable") == 1, app.log()
            assert http(app.url + "/healthz")[0] == 200
        finally:
            app.stop()
            fake.proc.terminate()
    finally:
        d.close()
