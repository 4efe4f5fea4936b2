"""The console end to end: the real `fluxgate serve` with a real gnome-keyring on a private
session bus, the testkit's fake upstream, and Debian's headless Chromium (playwright-core)
driving the page (tests/browser/console.mjs): sign in with a `fluxgate console` link, add two
keys (they land in the keychain, not in any file), make one hit a rate limit and see the
countdown, edit a route with the explain preview, make a client setup."""

import json
import re
import os
import subprocess
import tempfile
from pathlib import Path

from conftest import FLUXGATE, ROOT, Fake, _read_url, canary
from desktop import BUS_CONFIG

BROWSER = ROOT / "tests" / "browser"
SHOTS = ROOT / "target" / "screenshots"
# Words a Chinese console shows as they are: product, vendor and format names.
NAMES = {"Fluxgate", "English", "OpenAI", "Anthropic", "Gemini", "DeepSeek", "OpenRouter", "Ollama", "LM Studio", "Google Gemini", "Mistral", "Groq"}


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
                      f"base_url = \"{fake.url}/v1\"\nkeys = []\n\n[routes.m]\ntargets = [\"oa/gpt-4o\"]\nkeep_bodies_hours = 1\n")
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
        (SHOTS / "views").mkdir(parents=True, exist_ok=True)
        (SHOTS / "i18n").mkdir(parents=True, exist_ok=True)
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
        assert out["keychain_note"] == "OS keychain: ready.", out["keychain_note"]
        assert out["preset_fields"] == ["ollama", "openai-compatible", "http://127.0.0.1:11434/v1"], out["preset_fields"]
        assert "ollama list" in out["preset_note"], out["preset_note"]
        assert "Targets in the order written" in out["strategy_note"], out["strategy_note"]
        assert "oa/gpt-4o" in out["route_summary"] and "priority" in out["route_summary"], out["route_summary"]
        assert out["route_fields_hidden"] is True
        assert "oa/gpt-4o-mini" in out["picker_options"] and not any("claude" in o for o in out["picker_options"]), \
            out["picker_options"]
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
        assert out["overflow"] == [], out["overflow"]
        assert out["bad_id_mismatch"] is True and out["good_id_mismatch"] is False
        # Feedback where the user is looking.
        assert "contains spaces" in out["add_key_error"], out["add_key_error"]
        assert out["secret_kept"] == "sk-has a space"
        assert out["title_clear"] is True
        assert all(title == "Sign in" for _, title in out["signed_out"]), out["signed_out"]
        # The key table: no stale reason on a revived key, its last error as history; Revive
        # explained and offered only where it makes sense; each key's last 24 hours.
        assert "without testing" in out["revive_title"], out["revive_title"]
        assert out["strip_title"].startswith("cooling (rate limited), "), out["strip_title"]
        assert out["dash_24h_bars"] >= 1, out["dash_24h_bars"]
        assert out["strip_link"].startswith("#requests?provider=oa&key=work&since_ms="), out["strip_link"]
        assert out["revived_reason"] == "", out["revived_reason"]
        assert out["revived_msg"].startswith("last error just now: "), out["revived_msg"]
        assert "history" in out["revived_msg_class"]
        assert "Revive" not in out["healthy_has_revive"], out["healthy_has_revive"]
        assert re.match(r"\d+ req · \$[0-9.]+used just now$", out["spare_usage"]), out["spare_usage"]
        for view in ("dashboard", "keys", "routes", "requests", "usage", "setup", "settings"):
            for variant in ("light-1440", "light-720", "dark-1440", "dark-720"):
                assert (SHOTS / "views" / f"{view}-{variant}.png").stat().st_size > 5_000, (view, variant)
        # The inspector: the failover's two attempts (the rate-limited key, then the spare),
        # its filter in the address, a request that arrived while the page was open, the export.
        assert out["inspector_hash"] == "#requests?retried=1", out["inspector_hash"]
        assert out["retried_rows"] == 1, out["retried_rows"]
        assert [a["outcome"] for a in out["attempts"]] == ["failed", "served"], out["attempts"]
        assert "oa/work" in out["attempts"][0]["text"] and "429" in out["attempts"][0]["text"], out["attempts"]
        assert "rate_limited" in out["attempts"][0]["text"], out["attempts"]
        assert "oa/spare" in out["attempts"][1]["text"], out["attempts"]
        assert out["live_rows"][1] == out["live_rows"][0] + 1, out["live_rows"]
        assert len(out["export_lines"]) == out["live_rows"][1], out["export_lines"]
        assert all("attempt_log" in line for line in out["export_lines"])
        assert out["usage_link_rows"] >= 2, out["usage_link_rows"]
        assert out["usage_charts"] == ["Requests", "Tokens", "Spend"], out["usage_charts"]
        assert out["usage_7d_bars"] >= 1, out["usage_7d_bars"]
        assert out["bar_rows"] >= 1 and "Between" in out["bar_window"], (out["bar_rows"], out["bar_window"])
        assert out["spend_today"].startswith("$") and out["spend_today"] != "$0", out["spend_today"]
        assert out["dash_chart"] >= 1, out["dash_chart"]
        # Chinese: every view drawn from the zh-CN catalogue, kept over a reload; no English
        # sentence of the catalogue left on any view; a Chinese browser starts in Chinese.
        assert out["zh_html_lang"] == "zh-CN" and out["zh_after_reload"] == "zh-CN"
        catalogues = ROOT / "crates" / "fluxgate-core" / "i18n"
        en = json.loads((catalogues / "en.json").read_text())
        zh = json.loads((catalogues / "zh-CN.json").read_text())
        assert out["zh"]["keys"]["h1"] == zh["keys.title"], out["zh"]["keys"]["h1"]
        assert out["zh"]["routes"]["h1"] == zh["routes.title"]
        assert out["zh"]["settings"]["h1"] == zh["settings.title"]
        sentences = [v for k, v in en.items() if "{" not in v and v != zh[k] and len(v) >= 12 and " " in v]
        for view, seen in out["zh"].items():
            assert re.search(r"[\u4e00-\u9fff]", seen["h1"]), (view, seen["h1"])
            left = [s for s in sentences if s in seen["main"]]
            assert left == [], (view, left)
            # No control left in English: an English word on a button, column head, label or
            # placeholder without any Chinese beside it (names, URLs, kinds and codes excepted).
            english = [
                c
                for c in seen["controls"]
                if not re.search(r"[\u4e00-\u9fff]", c) and re.search(r"\b[A-Z][a-z]{2,}\b", c) and c not in NAMES
            ]
            assert english == [], (view, english)
        assert out["zh_first_visit_h1"] == zh["signin.title"], out["zh_first_visit_h1"]
        for view in out["zh"]:
            for lang in ("zh-CN", "en"):
                assert (SHOTS / "i18n" / f"{view}-{lang}.png").stat().st_size > 10_000, (view, lang)
        # Route m keeps bodies: the page says so, and the detail shows them.
        assert "are kept" in out["keeping_notice"] and "m: 1 h" in out["keeping_notice"], out["keeping_notice"]
        assert '"messages"' in out["kept_request"], out["kept_request"]
        assert "chat.completion" in out["kept_response"], out["kept_response"]
        assert "ANTHROPIC_BASE_URL=" + base in out["setup_text"], out["setup_text"]
        listed = dict(out["tokens_listed"])
        assert listed["e2e"] == "just now", listed
        assert listed[out["revoked_token"]] == "not since Fluxgate started", listed
        assert out["revoked_token"] not in out["tokens_after"] and "e2e" in out["tokens_after"], out["tokens_after"]
        assert '"ANTHROPIC_BASE_URL": "' + base + '"' in out["claude_preview"], out["claude_preview"]
        assert not (home / ".claude" / "settings.json").exists(), "a preview writes nothing"
        assert out["first_tab_stop"] == "Skip to content"
        assert out["after_skip"] == "main"
        assert out["cookies"] == [{"name": "fluxgate_console", "httpOnly": True, "sameSite": "Strict"}], out["cookies"]
        for k in keys.values():
            for where in ("dom", "storage", "keys_page_text", "usage_text", "requests_text"):
                assert k[:12] not in out[where], where
        files = [p for p in data.rglob("*") if p.is_file()]
        for f in [config, tmp / "serve.err", *files, *(home / ".local/share/keyrings").glob("*")]:
            content = f.read_bytes()
            for k in keys.values():
                assert k[:12].encode() not in content, f
        for shot in ("console-dashboard.png", "console-keys.png", "console-routes.png", "console-usage.png",
                     "console-requests.png", "console-setup.png"):
            assert (SHOTS / shot).stat().st_size > 10_000, shot
    finally:
        serve.terminate()
        serve.wait(timeout=15)
        fake.proc.terminate()
        bus.terminate()
