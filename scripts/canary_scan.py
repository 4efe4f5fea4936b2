#!/usr/bin/env python3
"""The suite-wide secrets canary (RELIABILITY.md 7).

Every fake key the test suite made is listed in CANARY_DIR (one line each). This reads every
file under each ROOT (logs, temporary directories, SQLite `.db`/`-wal`/`-shm` files, captured
test output) and fails if any holds a key or its first 12 characters.

Usage: canary_scan.py CANARY_DIR ROOT...
"""

import os
import sys


def main() -> int:
    canary_dir, roots = sys.argv[1], sys.argv[2:]
    keys = set()
    for name in os.listdir(canary_dir):
        with open(os.path.join(canary_dir, name), encoding="utf-8") as f:
            keys.update(line.strip() for line in f if line.strip())
    if not keys:
        print("canary scan: no canaries were registered; the scan proves nothing", file=sys.stderr)
        return 1
    needles = {k.encode() for k in keys} | {k[:12].encode() for k in keys}
    canary_dir = os.path.realpath(canary_dir)
    files = 0
    size = 0
    leaks = []
    for root in roots:
        for dirpath, _dirs, names in os.walk(root):
            if os.path.realpath(dirpath).startswith(canary_dir):
                continue
            for name in names:
                path = os.path.join(dirpath, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                files += 1
                size += len(data)
                if b"sk-canary-" not in data:
                    continue
                hits = [n.decode() for n in needles if n in data]
                if hits:
                    leaks.append((path, sorted(hits)[:3]))
    print(f"canary scan: {len(keys)} fake keys, {files} files ({size / 1e6:.1f} MB) read, {len(leaks)} leaking")
    for path, hits in leaks[:50]:
        print(f"  LEAK {path}: {', '.join(h[:14] + '…' for h in hits)}")
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main())
