#!/usr/bin/env python3
"""Fluxgate's overhead benchmark: the same load against (a) the fake upstream directly, (b) a
zero-logic TCP relay in front of it and (c) Fluxgate in front of it.

Fluxgate and the relay are pinned to CPU 0; the load generator (oha) and the fake to CPU 1.
Prints a Markdown report (paste into BENCHMARKS.md) and writes target/bench/results.json.

Usage: python3 bench/run.py [--seconds 8]     (needs `oha` on PATH: cargo install oha)
       python3 bench/run.py --translation     (same-dialect vs translated paths through Fluxgate)
       python3 bench/run.py --baseline PATH   (also an older `fluxgate` binary, in the same run)
       python3 bench/run.py --team            (also Fluxgates in team mode on a local redis-server)
       python3 bench/run.py --postgres URL    (also Fluxgates with [store] postgres, without and
                                               with a budget; password in FLUXGATE_PG_PASSWORD)
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REL = ROOT / "target" / "release"
CLK = os.sysconf("SC_CLK_TCK")
BODY = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "Say hi in five words."}], "max_tokens": 16})


def start(args, env=None):
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    t0 = time.perf_counter()
    while True:
        line = p.stdout.readline()
        if line.startswith("listening on "):
            return p, line.split()[-1], time.perf_counter() - t0
        if not line and p.poll() is not None:
            raise RuntimeError(f"{args[0]} exited")


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def mem_kb(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def oha(url, token, conc, seconds, body=BODY):
    out = subprocess.run(
        ["taskset", "-c", "1", "oha", "-z", f"{seconds}s", "-c", str(conc), "--no-tui", "--output-format", "json",
         "-m", "POST", "-H", f"authorization: Bearer {token}", "-H", "content-type: application/json", "-d", body, url],
        capture_output=True, text=True, check=True)
    j = json.loads(out.stdout)
    ok = j.get("statusCodeDistribution", {}).get("200", 0)
    total = sum(j.get("statusCodeDistribution", {}).values())
    pct = j["latencyPercentiles"]
    return {"rps": j["summary"]["requestsPerSec"], "p50_ms": pct["p50"] * 1000, "p99_ms": pct["p99"] * 1000, "ok": ok, "total": total}


def team_targets(cfg, work, env, procs, targets):
    """Starts a redis-server (CPU 1, with the load generator) and two Fluxgates in team mode on
    CPU 0: `team` (its key has no local limit: no Redis round trip per request) and `team+rpm`
    (a limit too high to bite: one script call per request). Returns each one's Redis pid."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    redis = subprocess.Popen(["taskset", "-c", "1", "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(redis)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.02)
    base = cfg.read_text()
    side = {}
    for name, limit in (("team", ""), ("team+rpm", ", rpm = 1000000000")):
        # The first key line is the `fast` provider's: the limit goes there.
        plain = 'keys = [{ id = "k", secret = "env:BENCH_KEY" }]'
        text = f'[state]\nredis = "redis://127.0.0.1:{port}"\n' + base.replace(
            plain, f'keys = [{{ id = "k", secret = "env:BENCH_KEY"{limit} }}]', 1)
        tcfg = work / f"{name}.toml"
        tcfg.write_text(text)
        tdata = work / f"data-{name}"
        tok = subprocess.run([str(REL / "fluxgate"), "token", "new", "bench", "--data-dir", str(tdata)], capture_output=True, text=True, check=True, env=env).stdout.strip()
        p, url, _ = start(["taskset", "-c", "0", str(REL / "fluxgate"), "serve", "--config", str(tcfg), "--data-dir", str(tdata), "--listen", "127.0.0.1:0"], env)
        procs.append(p)
        targets[name] = (url, tok, p.pid)
        side[name] = redis.pid
    return side


def postgres_targets(cfg, work, env, procs, targets, url):
    """Two Fluxgates on CPU 0 with `[store] postgres = url` (the password in
    FLUXGATE_PG_PASSWORD): `pg` (records, tokens and the rest shared; no request waits on
    PostgreSQL) and `pg+budget` (a budget covering every request: a transaction per request)."""
    base = cfg.read_text()
    for name, extra in (("pg", ""), ("pg+budget", "[[budgets]]\ndaily_tokens = 1000000000000\n")):
        tcfg = work / f"{name}.toml"
        tcfg.write_text(f'[store]\npostgres = "{url}"\npostgres_password = "env:FLUXGATE_PG_PASSWORD"\n' + extra + base)
        tdata = work / f"data-{name}"
        tok = subprocess.run([str(REL / "fluxgate"), "token", "new", "bench", "--data-dir", str(tdata)], capture_output=True, text=True, check=True, env=env).stdout.strip()
        p, purl, _ = start(["taskset", "-c", "0", str(REL / "fluxgate"), "serve", "--config", str(tcfg), "--data-dir", str(tdata), "--listen", "127.0.0.1:0"], env)
        procs.append(p)
        targets[name] = (purl, tok, p.pid)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3, help="runs per cell; the report shows medians")
    ap.add_argument("--translation", action="store_true", help="compare same-dialect and translated paths")
    ap.add_argument("--baseline", type=Path, help="an older fluxgate binary measured as 'before' in the same run")
    ap.add_argument("--team", action="store_true", help="also Fluxgate with [state] redis: keys without and with a local limit")
    ap.add_argument("--postgres", help="also Fluxgate with [store] postgres = URL, without and with a budget")
    a = ap.parse_args()
    if not shutil.which("oha"):
        sys.exit("oha is not on PATH: cargo install oha")
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "fluxgate-server", "-p", "fluxgate-testkit", "-p", "fluxgate-bench"], check=True, cwd=ROOT)
    key = "sk-bench-0123456789abcdef"
    work = Path(tempfile.mkdtemp(prefix="fluxgate-bench-"))
    procs = []
    try:
        fake, fake_url, _ = start(["taskset", "-c", "1", str(REL / "fluxgate-fake"), "--quiet", "--key", f"bench={key}"])
        procs.append(fake)
        slow, slow_url, _ = start(["taskset", "-c", "1", str(REL / "fluxgate-fake"), "--quiet", "--chunk-delay-ms", "20", "--key", f"bench={key}"])
        procs.append(slow)
        relay, relay_url, _ = start(["taskset", "-c", "0", str(REL / "relay"), "127.0.0.1:0", fake_url.removeprefix("http://")])
        procs.append(relay)
        srelay, srelay_url, _ = start(["taskset", "-c", "0", str(REL / "relay"), "127.0.0.1:0", slow_url.removeprefix("http://")])
        procs.append(srelay)
        cfg = work / "config.toml"
        cfg.write_text(
            f'[providers.fast]\nkind = "openai-compatible"\nbase_url = "{fake_url}/v1"\nkeys = [{{ id = "k", secret = "env:BENCH_KEY" }}]\n'
            f'[providers.ant]\nkind = "anthropic"\nbase_url = "{fake_url}"\nkeys = [{{ id = "k", secret = "env:BENCH_KEY" }}]\n'
            f'[routes.benchant]\ntargets = ["ant/bench-upstream"]\n'
            f'[providers.slow]\nkind = "openai-compatible"\nbase_url = "{slow_url}/v1"\nkeys = [{{ id = "k", secret = "env:BENCH_KEY" }}]\n'
            f'[routes.bench]\ntargets = ["fast/bench-upstream"]\n[routes.slowbench]\ntargets = ["slow/bench-upstream"]\n')
        env = dict(os.environ, BENCH_KEY=key)
        data = work / "data"
        token = subprocess.run([str(REL / "fluxgate"), "token", "new", "bench", "--data-dir", str(data)], capture_output=True, text=True, check=True, env=env).stdout.strip()
        starts = []
        for _ in range(5):
            fg, fg_url, t = start(["taskset", "-c", "0", str(REL / "fluxgate"), "serve", "--config", str(cfg), "--data-dir", str(data), "--listen", "127.0.0.1:0"], env)
            starts.append(t)
            fg.terminate()
            fg.wait()
        fg, fg_url, t = start(["taskset", "-c", "0", str(REL / "fluxgate"), "serve", "--config", str(cfg), "--data-dir", str(data), "--listen", "127.0.0.1:0"], env)
        procs.append(fg)
        targets = {"direct": (fake_url, key, None), "relay": (relay_url, key, relay.pid)}
        if a.baseline:
            # The older binary gets its own data directory: its store may predate today's schema.
            old_data = work / "data-before"
            old_token = subprocess.run([str(a.baseline), "token", "new", "bench", "--data-dir", str(old_data)], capture_output=True, text=True, check=True, env=env).stdout.strip()
            old, old_url, _ = start(["taskset", "-c", "0", str(a.baseline), "serve", "--config", str(cfg), "--data-dir", str(old_data), "--listen", "127.0.0.1:0"], env)
            procs.append(old)
            targets["before"] = (old_url, old_token, old.pid)
        targets["fluxgate"] = (fg_url, token, fg.pid)
        side = {}
        if a.team:
            side = team_targets(cfg, work, env, procs, targets)
        if a.postgres:
            postgres_targets(cfg, work, env, procs, targets, a.postgres)
        time.sleep(1.0)
        if a.translation:
            translation(fg, fg_url, token, a)
            return
        idle_rss = mem_kb(fg.pid, "VmRSS")
        results = {"startup_ms_median": sorted(starts)[2] * 1000, "idle_rss_kb": idle_rss, "load": {}, "stream": {}}
        # Warm up connection pools and caches.
        for name, (url, tok, _) in targets.items():
            oha(url + "/v1/chat/completions", tok, 4, 1)
        runs = {}
        for rep in range(a.repeat):
            # Every other run goes through the targets in reverse, so none is always measured
            # first or last (this machine drifts within a run).
            order = list(targets.items())
            if rep % 2:
                order.reverse()
            for conc in (1, 16, 64):
                for name, (url, tok, pid) in order:
                    before = cpu_seconds(pid) if pid else 0
                    side_before = cpu_seconds(side[name]) if name in side else 0
                    r = oha(url + "/v1/chat/completions", tok, conc, a.seconds)
                    if pid:
                        r["cpu_us_per_req"] = (cpu_seconds(pid) - before) / max(r["ok"], 1) * 1e6
                    if name in side:
                        r["redis_cpu_us_per_req"] = (cpu_seconds(side[name]) - side_before) / max(r["ok"], 1) * 1e6
                    runs.setdefault((str(conc), name), []).append(r)
        for (conc, name), rs in runs.items():
            med = {k: sorted(x[k] for x in rs)[len(rs) // 2] for k in rs[0] if k not in ("ok", "total")}
            med["ok"] = sum(x["ok"] for x in rs)
            med["total"] = sum(x["total"] for x in rs)
            results["load"].setdefault(conc, {})[name] = med
        results["peak_rss_kb"] = mem_kb(fg.pid, "VmHWM")
        probe = str(REL / "streamprobe")
        streams = [("direct", slow_url, key, None), ("relay", srelay_url, key, None)]
        if a.baseline:
            streams.append(("before", targets["before"][0], targets["before"][1], "slowbench"))
        streams.append(("fluxgate", fg_url, token, "slowbench"))
        for name, url, tok, model in streams:
            body_model = model or "bench"
            out = subprocess.run(["taskset", "-c", "1", probe, url + "/v1/chat/completions", tok, "40", body_model], capture_output=True, text=True, check=True)
            results["stream"][name] = json.loads(out.stdout)
        print_report(results, a.seconds)
        out = ROOT / "target" / "bench"
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=2))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)


ANT_BODY = json.dumps({"model": "bench", "max_tokens": 16, "messages": [{"role": "user", "content": "Say hi in five words."}]})


def translation(fg, url, token, a):
    """CPU per request through Fluxgate: same dialect against both translated directions."""
    paths = [
        ("OpenAI in -> OpenAI out (same dialect)", "/v1/chat/completions", BODY),
        ("Anthropic in -> Anthropic out (same dialect)", "/v1/messages", ANT_BODY.replace('"bench"', '"benchant"')),
        ("Anthropic in -> OpenAI out (translated)", "/v1/messages", ANT_BODY),
        ("OpenAI in -> Anthropic out (translated)", "/v1/chat/completions", BODY.replace('"bench"', '"benchant"')),
    ]
    for _, path, body in paths:
        oha(url + path, token, 4, 1, body)
    rows = {}
    for _ in range(a.repeat):
        for name, path, body in paths:
            before = cpu_seconds(fg.pid)
            r = oha(url + path, token, 16, a.seconds, body)
            r["cpu_us_per_req"] = (cpu_seconds(fg.pid) - before) / max(r["ok"], 1) * 1e6
            rows.setdefault(name, []).append(r)
    print(f"\nNon-streaming, c=16, {a.seconds} s per run, median of {a.repeat} runs (oha on CPU 1, Fluxgate on CPU 0)\n")
    print("| path | RPS | p50 ms | p99 ms | Fluxgate CPU µs/req | errors |")
    print("|---|---|---|---|---|---|")
    for name, rs in rows.items():
        med = {k: sorted(x[k] for x in rs)[len(rs) // 2] for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req")}
        errors = sum(x["total"] - x["ok"] for x in rs)
        print(f"| {name} | {med['rps']:.0f} | {med['p50_ms']:.3f} | {med['p99_ms']:.3f} | {med['cpu_us_per_req']:.1f} | {errors} |")


def print_report(r, seconds):
    print(f"\nNon-streaming POST /v1/chat/completions, {seconds} s per run, median of the runs per cell (oha on CPU 1; relay and Fluxgate on CPU 0)\n")
    print("| c | target | RPS | p50 ms | p99 ms | added p50 ms | added p99 ms | CPU µs/req | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for conc, row in r["load"].items():
        d = row["direct"]
        for name, x in row.items():
            added50 = "" if name == "direct" else f"{x['p50_ms'] - d['p50_ms']:.3f}"
            added99 = "" if name == "direct" else f"{x['p99_ms'] - d['p99_ms']:.3f}"
            cpu = f"{x['cpu_us_per_req']:.1f}" if "cpu_us_per_req" in x else ""
            if "redis_cpu_us_per_req" in x:
                cpu += f" (+{x['redis_cpu_us_per_req']:.1f} Redis)"
            print(f"| {conc} | {name} | {x['rps']:.0f} | {x['p50_ms']:.3f} | {x['p99_ms']:.3f} | {added50} | {added99} | {cpu} | {x['total'] - x['ok']} |")
    print("\nStreaming (fake sends 9 chunks 20 ms apart), 40 sequential requests\n")
    print("| target | TTFT p50 ms | TTFT p99 ms | largest inter-chunk gap, median ms | largest gap, max ms |")
    print("|---|---|---|---|---|")
    for name, s in r["stream"].items():
        print(f"| {name} | {s['ttft_p50_ms']:.2f} | {s['ttft_p99_ms']:.2f} | {s['max_gap_p50_ms']:.2f} | {s['max_gap_max_ms']:.2f} |")
    print(f"\nFluxgate start-up (spawn to listening, median of 5): {r['startup_ms_median']:.1f} ms")
    print(f"Fluxgate RSS: idle {r['idle_rss_kb'] / 1024:.1f} MB, peak {r['peak_rss_kb'] / 1024:.1f} MB")


if __name__ == "__main__":
    main()
