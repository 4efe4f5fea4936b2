"""`fluxgate setup TOOL` with the tools' real CLIs (from npm, tests/cli): for Claude Code, Codex,
Gemini CLI and opencode, in a home that already holds the user's own config, `--dry-run` shows a
diff and changes nothing, the setup writes the tool's files (owner-only, the user's settings and
comments kept), a second run changes nothing, the CLI completes a turn through Fluxgate with
only those files (no base URL or key in its environment), a tool call included, and `--undo`
puts the originals back byte for byte."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import FLUXGATE
from test_clis import base_env

CLI = Path(__file__).resolve().parents[1] / "cli" / "node_modules" / ".bin"
# opencode's Linux x64 build itself (see tests/cli/package.json).
OPENCODE = CLI.parent / "opencode-linux-x64-baseline" / "bin" / "opencode"
# The answer holds "fluxgate-setup-42" only if the shell really ran the command (and no tool
# refuses it as a command substitution).
MARK = "printf fluxgate-setup-%s 42"

# tool -> (the user's files before setup, relative to HOME; the CLI's command line)
TOOLS = {
    "claude-code": (
        {".claude/settings.json": '{\n  "model": "claude-sonnet-4-5",\n  "env": {\n    "DISABLE_AUTOUPDATER": "1"\n  },\n'
                                  '  "permissions": {"allow": ["Bash(echo:*)"]}\n}\n'},
        [str(CLI / "claude"), "-p", f"Please run this: [[shell:{MARK}]]", "--allowedTools", "Bash",
         "--output-format", "json"],
    ),
    "codex": (
        {".codex/config.toml": '# my Codex settings\nmodel = "gpt-5-codex"  # the model I use\n\n'
                               '[profiles.quick]\nmodel = "gpt-5-mini"\n'},
        [str(CLI / "codex"), "exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox",
         f"Please run this: [[shell:{MARK}]]"],
    ),
    "gemini-cli": (
        {".gemini/settings.json": '{\n  "ui": {"hideTips": true},\n  "privacy": {"usageStatisticsEnabled": false}\n}\n',
         ".gemini/.env": "# my Gemini settings\nGEMINI_MODEL=gemini-2.5-pro\n"},
        [str(CLI / "gemini"), "--yolo", "-p", f"Please run this: [[shell:{MARK}]]"],
    ),
    "opencode": (
        {".config/opencode/opencode.json": '{\n  // my opencode settings\n  "$schema": "https://opencode.ai/config.json",\n'
                                           '  "autoupdate": false,\n  "permission": {"bash": "allow"}\n}\n'},
        [str(OPENCODE), "run", "-m", "fluxgate/via-chat", f"Please run this: [[shell:{MARK}]]"],
    ),
}


def tool_env(home: Path) -> dict:
    """The tools' environment: no base URL, no key — only what keeps them offline and quiet."""
    return dict(
        base_env(home),
        NO_COLOR="1",
        GEMINI_CLI_NO_RELAUNCH="true",
        OPENCODE_DISABLE_AUTOUPDATE="1",
        OPENCODE_DISABLE_MODELS_FETCH="1",
        OPENCODE_DISABLE_SHARE="1",
        OPENCODE_DISABLE_LSP_DOWNLOAD="1",
        OPENCODE_DISABLE_DEFAULT_PLUGINS="1",
    )


def setup(fg, home: Path, *args) -> subprocess.CompletedProcess:
    env = dict(fg.env, HOME=str(home))
    for k in ("CODEX_HOME", "XDG_CONFIG_HOME"):
        env.pop(k, None)
    return subprocess.run([str(FLUXGATE), "setup", *args, "--data-dir", str(fg.data), "--config", str(fg.config)],
                          env=env, capture_output=True, text=True, timeout=60)


def tokens(fg) -> list:
    out = subprocess.run([str(FLUXGATE), "token", "list", "--data-dir", str(fg.data)], env=fg.env,
                         capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


@pytest.mark.parametrize("tool", list(TOOLS))
def test_setup_points_the_real_cli_at_fluxgate_and_undo_restores_it(env, tmp_path, tool):
    fake, fg, _ = env
    files, command = TOOLS[tool]
    if not Path(command[0]).exists():
        pytest.fail(f"{command[0]} is not installed: run scripts/deps.sh test")
    home = tmp_path / "home"
    work = tmp_path / "work"
    work.mkdir()
    for rel, text in files.items():
        p = home / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(0o644)
    if tool == "gemini-cli":
        # The user trusts this project folder (Gemini CLI reads ~/.gemini/.env only in trusted ones).
        (home / ".gemini" / "trustedFolders.json").write_text(json.dumps({str(work): "TRUST_FOLDER"}))
    before_tokens = tokens(fg)

    # --dry-run: a diff, nothing written, no token made.
    dry = setup(fg, home, tool, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "+++ " in dry.stdout and "dry run" in dry.stdout, dry.stdout
    assert fg.token not in dry.stdout
    for rel, text in files.items():
        assert (home / rel).read_text() == text
    assert tokens(fg) == before_tokens

    done = setup(fg, home, tool)
    assert done.returncode == 0, done.stderr
    assert f"made the client token `{tool}`" in done.stdout, done.stdout
    assert tokens(fg) == before_tokens + [tool]
    written = [Path(line.removeprefix("wrote ")) for line in done.stdout.splitlines() if line.startswith("wrote ")]
    assert written, done.stdout
    for p in written:
        assert oct(p.stat().st_mode & 0o777) == "0o600", p
        assert "fgk_" in p.read_text() or p.name == "settings.json"
    # The user's own settings and comments are still there.
    for rel, text in files.items():
        now = (home / rel).read_text()
        for line in text.splitlines():
            if line.strip().startswith(("#", "//")) or "model" in line or "hideTips" in line or "autoupdate" in line:
                assert line.strip() in now, f"{rel} lost {line!r}:\n{now}"
    again = setup(fg, home, tool)
    assert again.returncode == 0 and "nothing to change" in again.stdout, again.stdout + again.stderr
    assert tokens(fg) == before_tokens + [tool]

    # The real CLI, with nothing but its own files to find Fluxgate.
    seen_before = len(fake.log())
    out = subprocess.run(command, cwd=work, env=tool_env(home), capture_output=True, text=True, timeout=300,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert "fluxgate-setup-42" in out.stdout, (out.stdout + out.stderr)[-4000:]
    log = fake.log()[seen_before:]
    assert log, "nothing reached the upstream"
    assert any("fluxgate-setup-42" in a["body"] for a in log), "the tool result went back upstream"
    if tool == "gemini-cli":
        # Gemini CLI on an Anthropic key with thinking on: its history keeps no thought parts,
        # only the signature Fluxgate packed onto the call, so the tool-result turn reaches
        # Anthropic with its signed thinking block again.
        turn = [a["body"] for a in log if a["path"] == "/v1/messages" and '"type":"tool_result"' in a["body"]]
        assert turn, [a["path"] for a in log]
        assert '"type":"thinking"' in turn[-1] and "fake-thinking-signature-EqQBCkgI" in turn[-1], turn[-1][-3000:]

    # --undo: the originals, byte for byte, with their modes; the token revoked.
    undone = setup(fg, home, "--undo", tool)
    assert undone.returncode == 0, undone.stderr
    for rel, text in files.items():
        assert (home / rel).read_text() == text, rel
        assert oct((home / rel).stat().st_mode & 0o777) == "0o644"
    for p in written:
        if str(p.relative_to(home)) not in files:
            assert not p.exists(), f"{p} was created by the setup and is still there"
    assert tokens(fg) == before_tokens
    again = setup(fg, home, "--undo", tool)
    assert again.returncode != 0 and "nothing to undo" in again.stderr


def test_a_malformed_config_is_refused_with_its_line_and_left_alone(env, tmp_path):
    _, fg, _ = env
    home = tmp_path / "home"
    bad = home / ".claude" / "settings.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{\n  "env": {\n    "A": "1"\n  \n}\n')
    out = setup(fg, home, "claude-code")
    assert out.returncode != 0
    assert "line 6" in out.stderr and str(bad) in out.stderr and "Nothing was changed" in out.stderr, out.stderr
    assert bad.read_text() == '{\n  "env": {\n    "A": "1"\n  \n}\n'
    unknown = setup(fg, home, "cursor")
    assert unknown.returncode != 0 and "claude-code, codex, gemini-cli, opencode" in unknown.stderr
