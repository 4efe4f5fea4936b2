#!/usr/bin/env python3
"""Instructions per proxied request, counted by callgrind (repeatable whatever else the machine
does, unlike seconds): each binary serves a run of N1 and a run of N2 requests (`oha -n N -c 4`)
under `valgrind --tool=callgrind`; instructions per request = (total N2 - total N1) / (N2 - N1),
so start-up and shutdown cancel out.

Usage: python3 bench/callgrind.py [--n1 3000 --n2 6000] [--stream] [--redis URL [--rpm N]]
                                  [--postgres URL [--budget [--budget-tokens N]]] BINARY [BINARY ...]
       (--redis: team mode on that Redis; --rpm: the key gets a local limit, so each request
       takes room through Redis)
       (--budget: a daily budget of --budget-tokens covering every request; with --postgres a
       replica leases 2% of it at a time, so a smaller budget means more transactions)
       (--stream: streamed Chat requests that do not ask for usage, as most tools send them)
       (builds the release fake first; needs valgrind and oha on PATH)
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REL = ROOT / "target" / "release"
BODY = '{"model": "bench", "messages": [{"role": "user", "content": "Say hi in five words."}], "max_tokens": 16}'
KEY = "sk-bench-0123456789abcdef"


def wait_line(p, prefix):
    while True:
        line = p.stdout.readline()
        if line.startswith(prefix):
            return line.split()[-1]
        if not line and p.poll() is not None:
            raise RuntimeError("process exited before it listened")


STREAM_BODY = BODY[:-1] + ', "stream": true}'


def total_instructions(binary, n, fake_url, work, redis=None, rpm=None, postgres=None, budget=None, stream=False):
    cfg = work / "config.toml"
    state = f'[state]\nredis = "{redis}"\n' if redis else ""
    if postgres:
        state += f'[store]\npostgres = "{postgres}"\npostgres_password = "env:FLUXGATE_PG_PASSWORD"\n'
    if budget:
        # A budget the run does not reach: every request still takes and releases a hold.
        state += f"[[budgets]]\ndaily_tokens = {budget}\n"
    limit = f", rpm = {rpm}" if rpm else ""
    cfg.write_text(
        f'{state}[providers.fast]\nkind = "openai-compatible"\nbase_url = "{fake_url}/v1"\n'
        f'keys = [{{ id = "k", secret = "env:BENCH_KEY"{limit} }}]\n[routes.bench]\ntargets = ["fast/bench-upstream"]\n')
    env = dict(os.environ, BENCH_KEY=KEY)
    data = Path(tempfile.mkdtemp(dir=work))
    token = subprocess.run([binary, "token", "new", "bench", "--data-dir", str(data)], capture_output=True,
                           text=True, check=True, env=env).stdout.strip()
    out = work / f"callgrind.{n}.{os.getpid()}.out"
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, "serve",
                          "--config", str(cfg), "--data-dir", str(data), "--listen", "127.0.0.1:0"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    url = wait_line(p, "listening on ")
    subprocess.run(["oha", "-n", str(n), "-c", "4", "--no-tui", "-m", "POST", "-H", f"authorization: Bearer {token}",
                    "-H", "content-type: application/json", "-d", STREAM_BODY if stream else BODY, url + "/v1/chat/completions"],
                   capture_output=True, check=True)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=120)
    text = out.read_text(errors="replace")
    m = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.M)
    if not m:
        sys.exit(f"no totals in {out}")
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n1", type=int, default=3000)
    ap.add_argument("--n2", type=int, default=6000)
    ap.add_argument("--redis", help="team mode: [state] redis = URL")
    ap.add_argument("--rpm", type=int, help="a local limit on the key (with --redis: a script call per request)")
    ap.add_argument("--postgres", help="team mode: [store] postgres = URL (password in FLUXGATE_PG_PASSWORD)")
    ap.add_argument("--budget", action="store_true", help="a budget covering every request")
    ap.add_argument("--budget-tokens", type=int, default=10**12, help="its daily tokens (default 10^12)")
    ap.add_argument("--stream", action="store_true", help="streamed Chat requests without stream_options")
    ap.add_argument("binaries", nargs="+")
    a = ap.parse_args()
    for tool in ("valgrind", "oha"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not on PATH")
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "fluxgate-testkit"], check=True, cwd=ROOT)
    work = Path(tempfile.mkdtemp(prefix="fluxgate-callgrind-"))
    fake = subprocess.Popen([str(REL / "fluxgate-fake"), "--quiet", "--key", f"bench={KEY}"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        fake_url = wait_line(fake, "listening on ")
        print("| binary | instructions / request |\n|---|---|")
        for b in a.binaries:
            t1 = total_instructions(b, a.n1, fake_url, work, a.redis, a.rpm, a.postgres, a.budget and a.budget_tokens,
                                    a.stream)
            t2 = total_instructions(b, a.n2, fake_url, work, a.redis, a.rpm, a.postgres, a.budget and a.budget_tokens,
                                    a.stream)
            print(f"| {b} | {(t2 - t1) / (a.n2 - a.n1) / 1000:.1f}k |", flush=True)
    finally:
        fake.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
