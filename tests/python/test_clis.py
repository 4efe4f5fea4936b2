"""The Claude Code and Codex CLIs (from npm) through Fluxgate, offline, each to an upstream of
another dialect: Claude Code (Anthropic Messages) to an OpenAI-compatible key, Codex
(Responses API only) to an Anthropic key. Each completes a turn with a tool call: the fake
model asks for a shell command, the CLI runs it, and the final answer quotes its output."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

# Which model the CLI asks for, and the upstream path that model's route must reach.
CLAUDE_ROUTES = [(None, "/v1/chat/completions"), ("via-gemini", "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse")]
CODEX_ROUTES = [(None, "/v1/messages"), ("via-gemini", "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"),
                ("via-chat", "/v1/chat/completions")]

CLI = Path(__file__).resolve().parents[1] / "cli" / "node_modules" / ".bin"
CLAUDE = CLI / "claude"
CODEX = CLI / "codex"
MARK = "fluxgate-e2e-$((6*7))"


def base_env(home: Path) -> dict:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "TERM": "dumb",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    }


def run_codex(tmp_path: Path, config: str, extra_env: dict) -> subprocess.CompletedProcess:
    """`codex exec` asked to run a shell command, with `config` as its config.toml."""
    home = tmp_path / "home"
    work = tmp_path / "work"
    (home / ".codex").mkdir(parents=True)
    work.mkdir()
    (home / ".codex" / "config.toml").write_text(config)
    e = dict(base_env(home), CODEX_HOME=str(home / ".codex"), **extra_env)
    return subprocess.run(
        [str(CODEX), "exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox",
         f"Please run this: [[shell:echo {MARK}]]"],
        cwd=work, env=e, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )


def paths(fake) -> list:
    return [a["path"] for a in fake.log()]


@pytest.mark.parametrize("model,upstream", CLAUDE_ROUTES)
def test_claude_code_to_another_dialect(env, tmp_path, model, upstream):
    if not CLAUDE.exists():
        pytest.fail("Claude Code is not installed: run scripts/deps.sh test")
    fake, fg, _ = env
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    e = base_env(home)
    e["ANTHROPIC_BASE_URL"] = fg.url
    e["ANTHROPIC_API_KEY"] = fg.token
    args = [str(CLAUDE), "-p", f"Please run this: [[shell:echo {MARK}]]", "--allowedTools", "Bash", "--output-format", "json"]
    if model:
        args += ["--model", model]
    out = subprocess.run(
        args,
        cwd=work, env=e, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout)
    assert result.get("is_error") is False, result
    assert "tool said:" in result["result"] and "fluxgate-e2e-42" in result["result"], result
    seen = paths(fake)
    assert upstream in seen and "/v1/messages" not in seen, seen
    # The second turn carried the tool result back in the upstream's own shape.
    bodies = [a["body"] for a in fake.log() if a["path"] == upstream]
    assert any("fluxgate-e2e-42" in b for b in bodies), bodies[-1]


@pytest.mark.parametrize("model,upstream", CODEX_ROUTES)
def test_codex_to_another_dialect(env, tmp_path, model, upstream):
    if not CODEX.exists():
        pytest.fail("Codex is not installed: run scripts/deps.sh test")
    fake, fg, _ = env
    out = run_codex(tmp_path, f'model = "{model or "gpt-5-codex"}"\n'
                    'model_provider = "fluxgate"\n'
                    '[model_providers.fluxgate]\n'
                    'name = "Fluxgate"\n'
                    f'base_url = "{fg.url}/v1"\n'
                    'env_key = "FLUXGATE_TOKEN"\n'
                    'wire_api = "responses"\n', {"FLUXGATE_TOKEN": fg.token})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "tool said:" in out.stdout and "fluxgate-e2e-42" in out.stdout, out.stdout + out.stderr
    seen = paths(fake)
    assert upstream in seen and "/v1/responses" not in seen, seen
    bodies = [a["body"] for a in fake.log() if a["path"] == upstream]
    assert any("fluxgate-e2e-42" in b for b in bodies), bodies[-1]


def test_codex_builtin_provider_speaks_websocket_to_fluxgate(env, tmp_path):
    """Codex's built-in `openai` provider, pointed at Fluxgate with `openai_base_url`, opens a
    WebSocket to /v1/responses first: Fluxgate speaks it, so the turn (a tool call and its
    result, translated to an Anthropic key) completes over it with no reconnect and no fall
    back to HTTP."""
    if not CODEX.exists():
        pytest.fail("Codex is not installed: run scripts/deps.sh test")
    fake, fg, _ = env
    out = run_codex(tmp_path, f'model = "gpt-5-codex"\nopenai_base_url = "{fg.url}/v1"\n',
                    {"OPENAI_API_KEY": fg.token, "CODEX_API_KEY": fg.token})
    said = out.stdout + out.stderr
    assert out.returncode == 0, said
    assert "tool said:" in out.stdout and "fluxgate-e2e-42" in out.stdout, said
    for trouble in ("reconnect", "Reconnecting", "falling back", "stream disconnected", "error"):
        assert trouble not in said, f"{trouble!r} in Codex's output:\n{said}"
    log = (fg.workdir / "serve.log").read_text()
    assert "Responses WebSocket opened" in log, log[-3000:]
    seen = paths(fake)
    assert "/v1/messages" in seen and "/v1/responses" not in seen, seen
    bodies = [a["body"] for a in fake.log() if a["path"] == "/v1/messages"]
    assert any("fluxgate-e2e-42" in b for b in bodies), bodies[-1]
