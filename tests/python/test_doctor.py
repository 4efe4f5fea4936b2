"""`fluxgate doctor` reports each thing that would break a request, with what to do, and exits
1 when something is broken: an invalid config, a locked keychain, a key the upstream rejects,
a key whose secret is missing, Fluxgate not running or its port held by another program, a
tool pointed elsewhere or holding a revoked token, and no tray host or notification daemon.
All of it against the real binary, a real gnome-keyring on a private bus and the fake upstream."""

import json
import os
import socket
import subprocess
import tempfile
from pathlib import Path

from conftest import FLUXGATE, Fake, _read_url, canary
from desktop import BUS_CONFIG, SYSTEM_PY, Desktop


def doctor(env, data, config, *extra):
    r = subprocess.run([str(FLUXGATE), "doctor", "--json", "--data-dir", str(data), "--config", str(config), *extra],
                       env=env, capture_output=True, text=True, timeout=120)
    report = json.loads(r.stdout)
    return r.returncode, report, {c["check"]: c for c in report["checks"]}


class Session:
    """A private session bus with a gnome-keyring on it (unlocked unless `locked`)."""

    def __init__(self, locked=False, tmp=None):
        self.tmp = tmp or Path(tempfile.mkdtemp(prefix="fluxgate-doctor-"))
        self.home = self.tmp / "home"
        self.home.mkdir(exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix="fg-", dir="/tmp"))
        conf = self.tmp / "bus.conf"
        conf.write_text(BUS_CONFIG.format(tmp=run_dir))
        self.bus = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork", "--print-address=1"],
                                    stdout=subprocess.PIPE, text=True)
        self.env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=self.bus.stdout.readline().strip(), HOME=str(self.home),
                        XDG_DATA_HOME=str(self.home / ".local/share"), XDG_CONFIG_HOME=str(self.home / ".config"),
                        XDG_RUNTIME_DIR=str(run_dir))
        for k in ("DISPLAY", "FLUXGATE_CONFIG", "FLUXGATE_DATA_DIR", "CODEX_HOME"):
            self.env.pop(k, None)
        args = ["gnome-keyring-daemon", "--components=secrets"]
        if not locked:
            args.insert(1, "--unlock")
        kr = subprocess.run(args, input="test-pass" if not locked else None, env=self.env, capture_output=True,
                            text=True, timeout=20)
        assert kr.returncode == 0, kr.stderr
        self.procs = []

    def mock(self, *args):
        self.procs.append(subprocess.Popen([SYSTEM_PY, "-m", "dbusmock", *args], env=self.env,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def close(self):
        for p in self.procs:
            p.terminate()
        subprocess.run(["pkill", "-f", f"gnome-keyring-daemon.*{self.env['DBUS_SESSION_BUS_ADDRESS']}"],
                       capture_output=True)
        self.bus.terminate()


def test_doctor_names_each_broken_link_and_what_to_do():
    s = Session()
    good, rejected = canary(), canary()
    fake = Fake({"good": good})
    serve = None
    try:
        data = s.tmp / "data"
        config = s.tmp / "config.toml"
        config.write_text(f'[providers.oa]\nkind = "openai"\nbase_url = "{fake.url}/v1"\n'
                          'keys = [{ id = "good" }, { id = "rejected" }, { id = "nowhere", secret = "env:FG_DOCTOR_UNSET" }]\n'
                          '\n[routes.m]\ntargets = ["oa/gpt-4o"]\n')
        for kid, secret in (("good", good), ("rejected", rejected)):
            r = subprocess.run([str(FLUXGATE), "keys", "set", f"oa/{kid}", "--config", str(config), "--data-dir", str(data)],
                               input=secret, env=s.env, capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr

        # Not running, no tray host, no notification daemon, keys good, rejected and missing.
        code, report, by = doctor(s.env, data, config)
        assert code == 1 and report["ok"] is False, report
        assert by["config"]["status"] == "ok" and by["keychain"]["status"] == "ok", report
        assert by["key oa/good"]["status"] == "ok", by["key oa/good"]
        assert by["key oa/rejected"]["status"] == "fail" and "auth_failed" in by["key oa/rejected"]["detail"]
        assert "fluxgate keys set oa/rejected" in by["key oa/rejected"]["fix"]
        assert by["key oa/nowhere"]["status"] == "fail" and "FG_DOCTOR_UNSET" in by["key oa/nowhere"]["fix"]
        assert by["server"]["status"] == "warn" and "not running" in by["server"]["detail"]
        assert by["tray"]["status"] == "warn" and by["notifications"]["status"] == "warn", report
        assert by["tool codex"]["status"] == "skipped"
        text = json.dumps(report)
        for k in (good, rejected):
            assert k[:12] not in text

        # The port held by another program.
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        code, report, by = doctor(s.env, data, config, "--listen", f"127.0.0.1:{port}", "--offline")
        assert by["server"]["status"] == "fail" and "something else listens" in by["server"]["detail"], by["server"]
        holder.close()

        # Running, with a tray host and a notification daemon; the bad keys fixed; a tool set up
        # and another pointed elsewhere.
        s.mock("--template", "notification_daemon")
        s.mock("org.kde.StatusNotifierWatcher", "/StatusNotifierWatcher", "org.kde.StatusNotifierWatcher")
        Desktop.wait_for(lambda: subprocess.run(["gdbus", "call", "--session", "-d", "org.kde.StatusNotifierWatcher", "-o",
                                                 "/StatusNotifierWatcher", "-m", "org.freedesktop.DBus.Mock.AddProperty",
                                                 "org.kde.StatusNotifierWatcher", "IsStatusNotifierHostRegistered", "<true>"],
                                                env=s.env, capture_output=True).returncode == 0, 15, "the watcher mock")
        config.write_text(f'[providers.oa]\nkind = "openai"\nbase_url = "{fake.url}/v1"\nkeys = [{{ id = "good" }}]\n'
                          '\n[routes.m]\ntargets = ["oa/gpt-4o"]\n')
        serve = subprocess.Popen([str(FLUXGATE), "serve", "--config", str(config), "--data-dir", str(data), "--listen",
                                  "127.0.0.1:0"], env=s.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        base = _read_url(serve)
        r = subprocess.run([str(FLUXGATE), "setup", "codex", "--config", str(config), "--data-dir", str(data)],
                           env=s.env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        opencode = s.home / ".config" / "opencode" / "opencode.json"
        opencode.parent.mkdir(parents=True)
        opencode.write_text(json.dumps({"provider": {"fluxgate": {"options": {"baseURL": "http://127.0.0.1:1/v1",
                                                                              "apiKey": "fgk_x"}}}}))
        code, report, by = doctor(s.env, data, config)
        assert by["server"]["status"] == "ok" and base in by["server"]["detail"], by["server"]
        assert by["tool codex"]["status"] == "ok" and "`codex`" in by["tool codex"]["detail"], by["tool codex"]
        assert by["tool opencode"]["status"] == "fail" and "127.0.0.1:1" in by["tool opencode"]["detail"]
        assert by["tray"]["status"] == "ok" and by["notifications"]["status"] == "ok", report
        assert code == 1
        opencode.unlink()
        code, report, by = doctor(s.env, data, config)
        assert code == 0 and report["ok"] is True, report

        # The tool's token revoked: broken, and the fix says how.
        subprocess.run([str(FLUXGATE), "token", "revoke", "codex", "--data-dir", str(data)], env=s.env, check=True,
                       capture_output=True)
        code, report, by = doctor(s.env, data, config)
        assert code == 1 and by["tool codex"]["status"] == "fail" and "fluxgate setup codex" in by["tool codex"]["fix"]

        # An invalid config: reported with what to run, and the human output says it too.
        config.write_text("[providers.oa]\nkind = \"nope\"\n")
        code, report, by = doctor(s.env, data, config, "--offline")
        assert code == 1 and by["config"]["status"] == "fail" and "fluxgate check" in by["config"]["fix"]
        human = subprocess.run([str(FLUXGATE), "doctor", "--offline", "--data-dir", str(data), "--config", str(config)],
                               env=s.env, capture_output=True, text=True, timeout=60)
        assert human.returncode == 1 and "FAIL  config" in human.stdout and "→ fix" in human.stdout, human.stdout
    finally:
        if serve:
            serve.terminate()
            serve.wait(timeout=15)
        fake.proc.terminate()
        s.close()


def test_doctor_reports_a_locked_keychain():
    # A login collection made in an unlocked session, then a session that never unlocks it.
    first = Session()
    data = first.tmp / "data"
    config = first.tmp / "config.toml"
    config.write_text('[providers.oa]\nkind = "openai"\nkeys = [{ id = "work" }]\n')
    r = subprocess.run([str(FLUXGATE), "keys", "set", "oa/work", "--config", str(config), "--data-dir", str(data)],
                       input=canary(), env=first.env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    first.close()
    s = Session(locked=True, tmp=first.tmp)
    try:
        code, report, by = doctor(s.env, data, config, "--offline")
        assert code == 1
        assert by["keychain"]["status"] == "fail" and "locked" in by["keychain"]["detail"], by["keychain"]
        assert "unlock" in by["keychain"]["fix"]
    finally:
        s.close()
