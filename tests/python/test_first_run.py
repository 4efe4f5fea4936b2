"""The first run, in a terminal and in the console: keys already on the machine (an
environment variable, Claude Code's settings, Codex's auth.json) are listed by provider, last
four characters and where they were found; only the picked ones land in a real gnome-keyring
and the new config file; then the tools found are offered their setup. `fluxgate init` runs
under a pseudo-terminal answering its prompts; the console's welcome page runs in Chromium."""

import hashlib
import json
import os
import pty
import select
import subprocess
import time
from pathlib import Path

from conftest import FLUXGATE, ROOT, _read_url, canary
from test_doctor import Session

SHOTS = ROOT / "target" / "screenshots"


def in_keychain(env, account: str):
    r = subprocess.run(["secret-tool", "lookup", "service", "fluxgate", "username", account], env=env,
                       capture_output=True, text=True, timeout=20)
    return hashlib.sha256(r.stdout.strip().encode()).hexdigest() if r.returncode == 0 else None


class Terminal:
    """A command on a pseudo-terminal, read until a prompt and answered like a person."""

    def __init__(self, args, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execve(args[0], args, env)
        self.seen = ""

    def until(self, text, timeout=60):
        deadline = time.time() + timeout
        while text not in self.seen:
            left = deadline - time.time()
            assert left > 0, f"waited for {text!r}; the terminal shows:\n{self.seen}"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096).decode(errors="replace")
                except OSError:
                    chunk = ""
                if not chunk:
                    break
                self.seen += chunk
        assert text in self.seen, self.seen
        return self.seen

    def type(self, line):
        os.write(self.fd, (line + "\n").encode())

    def exit_code(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            try:
                if select.select([self.fd], [], [], 0.1)[0]:
                    self.seen += os.read(self.fd, 4096).decode(errors="replace")
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"still running:\n{self.seen}")


def test_init_in_a_terminal_keeps_only_the_picked_keys_and_offers_the_tools():
    s = Session()
    try:
        claude_key, deepseek_key = canary(), canary()
        settings = s.home / ".claude" / "settings.json"
        settings.parent.mkdir(parents=True)
        settings.write_text(json.dumps({"env": {"ANTHROPIC_API_KEY": claude_key}}, indent=2) + "\n")
        env = dict(s.env, DEEPSEEK_API_KEY=deepseek_key, PATH="/usr/bin:/bin", TERM="dumb")
        data = s.tmp / "data"
        t = Terminal([str(FLUXGATE), "init", "--data-dir", str(data)], env)
        listing = t.until("Store which in the OS keychain?")
        assert f"1. deepseek    …{deepseek_key[-4:]}  from the environment variable DEEPSEEK_API_KEY" in listing, listing
        assert f"2. anthropic   …{claude_key[-4:]}  from {settings} (Claude Code)" in listing, listing
        for k in (claude_key, deepseek_key):
            assert k[:12] not in listing
        t.type("1")
        t.until("stored deepseek/env in the OS keychain")
        t.until("Set up Claude Code?")
        assert "+    \"ANTHROPIC_BASE_URL\": \"http://127.0.0.1:8414\"" in t.seen, t.seen
        assert claude_key[:12] not in t.seen, "the diff shows the user's own key"
        t.type("y")
        t.until(f"wrote {settings}")
        assert t.exit_code() == 0, t.seen
        config = s.home / ".config" / "fluxgate" / "config.toml"
        text = config.read_text()
        assert "[providers.deepseek]" in text and 'keys = [{ id = "env" }]' in text, text
        assert "anthropic" not in text, "only the picked key is kept"
        assert in_keychain(env, "deepseek/env") == hashlib.sha256(deepseek_key.encode()).hexdigest()
        assert in_keychain(env, "anthropic/claude-code") is None
        now = json.loads(settings.read_text())
        assert now["env"]["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8414"
        assert now["env"]["ANTHROPIC_AUTH_TOKEN"].startswith("fgk_")
        for f in [config, *[p for p in data.rglob("*") if p.is_file()]]:
            assert deepseek_key[:12].encode() not in f.read_bytes(), f
        # Nothing found, nothing asked: a clear word instead.
        bare = dict(env, HOME=str(s.tmp / "empty"))
        (s.tmp / "empty").mkdir()
        bare.pop("DEEPSEEK_API_KEY")
        r = subprocess.run([str(FLUXGATE), "init", "--data-dir", str(s.tmp / "d2")], env=bare, capture_output=True,
                           text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert r.returncode == 0 and "No keys found" in r.stdout, r.stdout + r.stderr
    finally:
        s.close()


def test_the_console_opens_on_a_welcome_page_and_keeps_the_picked_key():
    s = Session()
    serve = None
    try:
        key = canary()
        auth = s.home / ".codex" / "auth.json"
        auth.parent.mkdir(parents=True)
        auth.write_text(json.dumps({"OPENAI_API_KEY": key}))
        env = dict(s.env)
        for k in list(env):
            if k.endswith("_API_KEY"):
                env.pop(k)
        data = s.tmp / "data"
        serve = subprocess.Popen([str(FLUXGATE), "serve", "--data-dir", str(data), "--listen", "127.0.0.1:0"], env=env,
                                 stdout=subprocess.PIPE, stderr=open(s.tmp / "serve.err", "w"), text=True)
        base = _read_url(serve)
        login = subprocess.run([str(FLUXGATE), "console", "--no-open", "--data-dir", str(data)], env=env,
                               capture_output=True, text=True, timeout=30)
        assert login.returncode == 0, login.stderr
        SHOTS.mkdir(parents=True, exist_ok=True)
        run = subprocess.run(["node", "welcome.mjs"], cwd=ROOT / "tests" / "browser", capture_output=True, text=True,
                             timeout=180, env=dict(env, E2E_LOGIN=login.stdout.strip(), E2E_SHOTS=str(SHOTS)))
        assert run.returncode == 0, run.stderr
        out = json.loads(run.stdout.strip().splitlines()[-1])
        assert "failure" not in out, out
        assert out["errors"] == [], out["errors"]
        assert out["steps"] == ["welcome", "stored", "codex set up", "done"], out["steps"]
        assert out["found"] == [f"openai …{key[-4:]} from {auth} (Codex CLI)"], out["found"]
        assert out["checked_before"] == 0, "nothing is picked for the user"
        assert "Tick the keys" in out["empty_submit"]
        assert "Stored openai/codex" in out["stored"], out["stored"]
        assert '+model_provider = "fluxgate"' in out["preview"], out["preview"]
        assert "Codex CLI now uses Fluxgate" in out["setup_msg"], out["setup_msg"]
        assert key[:12] not in out["dom"]
        config = s.home / ".config" / "fluxgate" / "config.toml"
        assert "[providers.openai]" in config.read_text() and 'id = "codex"' in config.read_text()
        assert in_keychain(env, "openai/codex") == hashlib.sha256(key.encode()).hexdigest()
        codex = (s.home / ".codex" / "config.toml").read_text()
        assert 'model_provider = "fluxgate"' in codex and base + "/v1" in codex, codex
        for f in [config, s.tmp / "serve.err", *[p for p in data.rglob("*") if p.is_file()]]:
            assert key[:12].encode() not in f.read_bytes(), f
    finally:
        if serve:
            serve.terminate()
            serve.wait(timeout=15)
        # The key the user had in Codex's file is theirs, not something Fluxgate wrote: remove
        # the fixture so the suite-wide canary scan reads only Fluxgate's own files.
        auth.unlink(missing_ok=True)
        s.close()
