#!/usr/bin/env python3
"""The desktop app's footprint (issue 4, BENCHMARKS.md "Desktop app"): start-up time, idle
memory of the whole process tree as PSS (smaps_rollup) with the window open and closed, the
time to reopen the window, and the installed size. Runs the release build under Xvfb with a
private D-Bus session and mocked tray watcher and notification daemon.

    cargo build --release -p fluxgate-app -p fluxgate-testkit --bins
    python3 bench/desktop_footprint.py [--runs 3]
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))

from desktop import Desktop, cmdline, descendants, pss_tree_kib  # noqa: E402

APP = ROOT / "target" / "release" / "fluxgate-app"
FAKE = ROOT / "target" / "release" / "fluxgate-fake"


def one_run(idle: float) -> dict:
    d = Desktop()
    d.start_mocks()
    fake = subprocess.Popen([str(FAKE), "--listen", "127.0.0.1:0", "--key", "a=sk-bench-aaaaaaaaaaaaaaaa",
                             "--key", "b=sk-bench-bbbbbbbbbbbbbbbb"], stdout=subprocess.PIPE, text=True)
    fake_url = fake.stdout.readline().split("listening on ", 1)[1].strip()
    config = Path(d.tmp) / "config.toml"
    config.write_text(f'[providers.oa]\nkind = "openai"\nbase_url = "{fake_url}/v1"\n'
                      'keys = [{ id = "a", secret = "env:K_A" }, { id = "b", secret = "env:K_B" }]\n')
    env = dict(d.env, K_A="sk-bench-aaaaaaaaaaaaaaaa", K_B="sk-bench-bbbbbbbbbbbbbbbb", FLUXGATE_LOG="warn")
    t0 = time.monotonic()
    app = subprocess.Popen([str(APP), "--config", str(config), "--data-dir", str(Path(d.tmp) / "data"),
                            "--listen", "127.0.0.1:0"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    out = {}
    try:
        app.stdout.readline()
        out["listening_s"] = time.monotonic() - t0
        d.wait_for(lambda: d.windows("^Fluxgate$"), 60, "the window", every=0.02)
        out["window_s"] = time.monotonic() - t0
        item = d.tray_item(app.pid)
        out["tray_s"] = time.monotonic() - t0
        time.sleep(idle)
        out["open_pss_mib"] = pss_tree_kib(app.pid) / 1024
        out["open_procs"] = len(descendants(app.pid)) + 1
        (wid,) = d.windows("^Fluxgate$")
        d.close_window(wid)
        d.wait_for(lambda: not any("--console-window" in cmdline(p) or "WebKit" in cmdline(p)
                                   for p in descendants(app.pid)), 20, "the window process to exit", every=0.05)
        time.sleep(idle)
        out["closed_pss_mib"] = pss_tree_kib(app.pid) / 1024
        out["closed_procs"] = len([p for p in descendants(app.pid) if cmdline(p)]) + 1
        t1 = time.monotonic()
        d.click(item, "Open console")
        d.wait_for(lambda: d.windows("^Fluxgate$"), 20, "the window to reopen", every=0.02)
        out["reopen_s"] = time.monotonic() - t1
    finally:
        app.terminate()
        app.wait(timeout=20)
        fake.terminate()
        d.close()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--idle", type=float, default=5.0, help="seconds of idle before each PSS reading")
    args = ap.parse_args()
    for p in (APP, FAKE):
        if not p.exists():
            sys.exit(f"{p} is missing: cargo build --release -p fluxgate-app -p fluxgate-testkit --bins")
    runs = [one_run(args.idle) for _ in range(args.runs)]
    keys = ["listening_s", "window_s", "tray_s", "reopen_s", "open_pss_mib", "closed_pss_mib", "open_procs",
            "closed_procs"]
    print(f"{'measure':<16} {'median':>9} {'min':>9} {'max':>9}   ({args.runs} runs, {args.idle:.0f} s idle)")
    for k in keys:
        v = [r[k] for r in runs]
        print(f"{k:<16} {statistics.median(v):>9.2f} {min(v):>9.2f} {max(v):>9.2f}")
    size = APP.stat().st_size / 1024 / 1024
    print(f"installed: fluxgate-app {size:.1f} MiB (the console is embedded; icons inside)")


if __name__ == "__main__":
    main()
