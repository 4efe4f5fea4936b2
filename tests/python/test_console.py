"""The console end to end: the real `fluxgate serve` with a real gnome-keyring on a private
session bus, the testkit's fake upstream, and Debian's headless Chromium (playwright-core)
driving the page (tests/browser/console.mjs): sign in with a `fluxgate console` link, add two
keys (they land in the keychain, not in any file), make one hit a rate limit and see the
countdown, edit a route with the explain preview, make a client setup."""

import json
import os
import subprocess
import tempfile
from pathlib import Path

from conftest import FLUXGATE, ROOT, Fake, _read_url, canary
from desktop import BUS_CONFIG

BROWSER = ROOT / "tests" / "browser"
SHOTS = ROOT / "target" / "screenshots"


def test_add_keys_watch_a_cooldown_and_edit_a_route_in_the_console():
    tmp = Path(tempfile.mkdtemp(prefix="fluxgate-console-"))
    home = tmp / "home"
    home.mkdir()
    conf = tmp / "bus.conf"
    run_dir = Path(tempfile.mkdtemp(prefix="fg-", dir="/tmp"))  # short socket paths
    conf.write_text(BUS_CONFIG.format(tmp=run_dir))
    bus = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork", "--print-address=1"],
                           stdout=subprocess.PIPE, text=True)
    env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=bus.stdout.readline().strip(), HOME=str(home),
               XDG_DATA_HOME=str(home / ".local/share"), XDG_RUNTIME_DIR=str(run_dir))
    env.pop("DISPLAY", None)
    keyring = subprocess.run(["gnome-keyring-daemon", "--unlock", "--components=secrets"], input="test-pass",
                             env=env, capture_output=True, text=True, timeout=20)
    assert keyring.returncode == 0, keyring.stderr
    keys = {"work": canary(), "spare": canary()}
    fake = Fake(keys)
    config = tmp / "config.toml"
    config.write_text("# console e2e config\n[providers.oa]\nkind = \"openai\"\n"
                      f"base_url = \"{fake.url}/v1\"\nkeys = []\n\n[routes.m]\ntargets = [\"oa/gpt-4o\"]\n")
    data = tmp / "data"
    serve = subprocess.Popen([str(FLUXGATE), "serve", "--config", str(config), "--data-dir", str(data),
                              "--listen", "127.0.0.1:0"], env=env, stdout=subprocess.PIPE,
                             stderr=open(tmp / "serve.err", "w"), text=True)
    try:
        base = _read_url(serve)
        admin = (data / "admin-token").read_text().strip()
        token = json.loads(subprocess.run(
            ["curl", "-s", "-X", "POST", "-H", f"authorization: Bearer {admin}", "-H", "content-type: application/json",
             "-d", '{"name":"e2e"}', base + "/admin/api/tokens"], capture_output=True, text=True).stdout)["token"]
        # The CLI hands out the one-time login link (`--no-open` prints it) ...
        login = subprocess.run([str(FLUXGATE), "console", "--no-open", "--data-dir", str(data), "--config",
                                str(config)], env=env, capture_output=True, text=True, timeout=20)
        assert login.returncode == 0, login.stderr
        assert login.stdout.strip().startswith(base + "/admin/login?code="), login.stdout
        # ... or gives the browser an owner-only page that forwards to it, so the code is in no
        # process's arguments; the browser below signs in through that page, as a user's would.
        opener = tmp / "bin"
        opener.mkdir()
        (opener / "xdg-open").write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {tmp}/opened\n")
        (opener / "xdg-open").chmod(0o755)
        opened = subprocess.run([str(FLUXGATE), "console", "--data-dir", str(data), "--config", str(config)],
                                env=dict(env, PATH=f"{opener}:{env['PATH']}"), capture_output=True, text=True,
                                timeout=20)
        assert opened.returncode == 0, opened.stderr
        page = (tmp / "opened").read_text().strip()
        assert "code=" not in page and page.startswith(str(data)), page
        assert oct(os.stat(page).st_mode & 0o777) == "0o600"
        link = "file://" + page
        SHOTS.mkdir(parents=True, exist_ok=True)
        run = subprocess.run(["node", "console.mjs"], cwd=BROWSER, capture_output=True, text=True, timeout=180,
                             env=dict(env, E2E_BASE=base, E2E_LOGIN=link, E2E_FAKE=fake.url, E2E_TOKEN=token,
                                      E2E_KEY_WORK=keys["work"], E2E_KEY_SPARE=keys["spare"], E2E_SHOTS=str(SHOTS)))
        assert run.returncode == 0, run.stderr
        out = json.loads(run.stdout.strip().splitlines()[-1])
        assert "failure" not in out, f"{out.get('failure')}\nsteps: {out['steps']}\nconsole: {out['console']}"
        assert out["errors"] == [], out["errors"]
        assert not any("not a valid regular expression" in m for m in out["console"]), out["console"]
        assert out["steps"][-1] == "done", out["steps"]

        # Keys: stored, the field cleared, the page says where they went (and no more than
        # the last four characters); the config names them by id only.
        for kid in ("work", "spare"):
            assert "stored in the OS keychain" in out[f"banner_{kid}"], out[f"banner_{kid}"]
            assert out[f"secret_field_after_{kid}"] == ""
        assert "works" in out["test_banner"], out["test_banner"]
        text = config.read_text()
        assert 'keys = [{ id = "work" }, { id = "spare" }]' in text, text
        assert text.startswith("# console e2e config\n")
        # The keychain holds them (read back through the router: both keys served upstream).
        log = [a["key"] for a in json.loads(subprocess.run(["curl", "-s", fake.url + "/_fake/log"],
                                                           capture_output=True, text=True).stdout)]
        assert "spare" in log and "work" in log, log

        # The cooldown, live, with a countdown that moves.
        assert out["failover_status"] == 200
        assert out["reason"] == "rate limited", out["reason"]
        assert out["countdown_1"].startswith("back in 1 min"), out["countdown_1"]
        assert out["countdown_1"] != out["countdown_2"], (out["countdown_1"], out["countdown_2"])
        assert out["healthy_count"] == "1/2"
        assert all("#" in u or u.endswith("/admin/") or u.startswith("file://") for u in out["navigations"]), \
            out["navigations"]
        # The session's secret sits in the console's own storage, not in the address bar.
        assert '"fluxgate.session"' in out["storage"], out["storage"]
        assert "fluxgate-session=" not in out["final_url"], out["final_url"]

        # The route preview followed the edit; an invalid draft said why; the save landed.
        assert "gpt-4o" in out["preview_before"][0]
        assert "gpt-4o-mini" in out["preview_after"][0], out["preview_after"]
        assert "ghost" in out["preview_error"], out["preview_error"]
        assert "saved" in out["route_saved_banner"]
        assert 'targets = ["oa/gpt-4o-mini", "oa/gpt-4o"]' in config.read_text()

        assert out["request_rows"] >= 1
        assert "ANTHROPIC_BASE_URL=" + base in out["setup_text"], out["setup_text"]
        assert '"ANTHROPIC_BASE_URL": "' + base + '"' in out["claude_preview"], out["claude_preview"]
        assert not (home / ".claude" / "settings.json").exists(), "a preview writes nothing"
        assert out["first_tab_stop"] == "Skip to content"
        assert out["after_skip"] == "main"
        assert out["cookies"] == [{"name": "fluxgate_console", "httpOnly": True, "sameSite": "Strict"}], out["cookies"]
        for k in keys.values():
            for where in ("dom", "storage", "keys_page_text", "usage_text"):
                assert k[:12] not in out[where], where
        files = [p for p in data.rglob("*") if p.is_file()]
        for f in [config, tmp / "serve.err", *files, *(home / ".local/share/keyrings").glob("*")]:
            content = f.read_bytes()
            for k in keys.values():
                assert k[:12].encode() not in content, f
        for shot in ("console-dashboard.png", "console-keys.png", "console-routes.png", "console-usage.png",
                     "console-setup.png"):
            assert (SHOTS / shot).stat().st_size > 10_000, shot
    finally:
        serve.terminate()
        serve.wait(timeout=15)
        fake.proc.terminate()
        bus.terminate()
