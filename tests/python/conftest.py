"""Fixtures that run the real `fluxgate` and `fluxgate-fake` binaries on ephemeral loopback ports."""

import json
import os
import secrets
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"
FLUXGATE = TARGET / "fluxgate"
FAKE = TARGET / "fluxgate-fake"


def canary() -> str:
    """A unique fake key, recorded for the suite-wide scan (scripts/canary_scan.py)."""
    key = "sk-canary-" + secrets.token_hex(16)
    where = os.environ.get("FLUXGATE_CANARY_DIR")
    if where:
        os.makedirs(where, exist_ok=True)
        with open(os.path.join(where, f"py-{os.getpid()}.txt"), "a") as f:
            f.write(key + "\n")
    return key


def _read_url(proc: subprocess.Popen, timeout: float = 10.0) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("listening on "):
            return line.split("listening on ", 1)[1].strip()
        if not line and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
    raise RuntimeError("the process did not report its address")


class Fake:
    def __init__(self, keys: dict):
        args = [str(FAKE), "--listen", "127.0.0.1:0"]
        for label, key in keys.items():
            args += ["--key", f"{label}={key}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        self.url = _read_url(self.proc)

    def _post(self, path: str, body) -> None:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST")
        urllib.request.urlopen(req).read()

    def script(self, label: str, faults: list) -> None:
        self._post(f"/_fake/script/{label}", faults)

    def always(self, label: str, fault: dict) -> None:
        self._post(f"/_fake/always/{label}", fault)

    def delay_ms(self, ms: int) -> None:
        self._post(f"/_fake/chunk_delay_ms/{ms}", {})

    def reset(self) -> None:
        self._post("/_fake/reset", {})

    def log(self) -> list:
        return json.loads(urllib.request.urlopen(self.url + "/_fake/log").read())

    def count(self, label: str) -> int:
        return sum(1 for a in self.log() if a["key"] == label)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


class Fluxgate:
    """A `fluxgate serve` process with a config pointing at the fake."""

    def __init__(self, fake: Fake, keys: dict, workdir: Path):
        self.workdir = workdir
        self.data = workdir / "data"
        self.config = workdir / "config.toml"
        self.env = dict(os.environ)
        self.env.pop("FLUXGATE_CONFIG", None)
        self.env.pop("FLUXGATE_DATA_DIR", None)
        self.env["FLUXGATE_LANG"] = "en"
        lines = []
        upstreams = (("oa", "openai", fake.url + "/v1"), ("ant", "anthropic", fake.url), ("ds", "openai-compatible", fake.url + "/v1"), ("gem", "gemini", fake.url))
        for provider, kind, base in upstreams:
            entries = []
            for label in keys:
                var = f"FG_TEST_{provider.upper()}_{label.upper()}"
                self.env[var] = keys[label]
                entries.append(f'{{ id = "{label}", secret = "env:{var}" }}')
            lines.append(f'[providers.{provider}]\nkind = "{kind}"\nbase_url = "{base}"\nkeys = [{", ".join(entries)}]\n')
        lines.append('[routes."gpt-4o"]\ntargets = ["oa/upstream-gpt"]\n')
        lines.append('[routes."claude-work"]\ntargets = ["ant/claude-upstream"]\n')
        lines.append('[routes."text-embedding-3-small"]\ntargets = ["oa/embed-upstream"]\n')
        # Pattern routes for the CLIs: every Claude model to an OpenAI-compatible key, every
        # GPT-5 model (Codex) to an Anthropic key.
        lines.append('[routes."claude-*"]\ntargets = ["ds/deepseek-chat"]\n')
        lines.append('[routes."gpt-5*"]\ntargets = ["ant/claude-upstream"]\n')
        lines.append('[routes."via-gemini"]\ntargets = ["gem/gemini-2.5-pro"]\n')
        lines.append('[routes."via-chat"]\ntargets = ["ds/deepseek-chat"]\n')
        # Gemini CLI asks for gemini-* models: to an Anthropic key.
        lines.append('[routes."gemini-*"]\ntargets = ["ant/claude-upstream"]\n')
        self.config.write_text("\n".join(lines))
        out = subprocess.run([str(FLUXGATE), "token", "new", "pytest", "--data-dir", str(self.data)], capture_output=True, text=True, env=self.env, check=True)
        self.token = out.stdout.strip()
        self.start()

    extra_args: list = []

    def start(self) -> None:
        self.stderr = open(self.workdir / "serve.log", "a")
        self.proc = subprocess.Popen(
            [str(FLUXGATE), "serve", "--config", str(self.config), "--data-dir", str(self.data), "--listen", "127.0.0.1:0", *self.extra_args],
            stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=self.env,
        )
        self.url = _read_url(self.proc)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(15)
        self.stderr.close()
        return code

    def restart(self) -> None:
        assert self.stop() == 0
        self.start()


@pytest.fixture
def env():
    """A fake upstream with three keys (`dead` unregistered, `limited`, `good`) and Fluxgate in front."""
    keys = {"dead": canary(), "limited": canary(), "good": canary()}
    fake = Fake({k: v for k, v in keys.items() if k != "dead"})
    work = Path(tempfile.mkdtemp(prefix="fluxgate-py-"))
    fg = Fluxgate(fake, keys, work)
    yield fake, fg, keys
    try:
        fg.stop()
    finally:
        fake.stop()
    # Canary check: nothing Fluxgate wrote holds a key or its first 12 characters.
    for path in work.rglob("*"):
        if path.is_file() and path.name != "config.toml":
            text = path.read_bytes().decode("utf-8", "replace")
            for key in keys.values():
                assert key not in text and key[:12] not in text, f"{path} leaks a key"
            assert fg.token not in text, f"{path} holds the client token"
