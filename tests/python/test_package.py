"""The .deb, installed as a user would: `scripts/package.sh --debug` builds it (the debug
binaries the suite already built, bundled exactly as a release is), `apt-get install ./….deb`
installs it with its dependencies, and then the installed `fluxgate` and `fluxgate-app` work from
PATH: a key stored with the installed CLI in a real gnome-keyring, the app under Xvfb with its
window and tray, a request served with that key. `apt-get remove` then takes the package's files
away and leaves the user's config, data and keychain entry alone. Runs where it may install
packages (root, as in CI); skipped elsewhere unless CI is set."""

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROOT, Fake, canary
from desktop import Desktop

# BENCHMARKS.md measures the release package the same way: FLUXGATE_PACKAGE_DEB=path installs
# that .deb instead of building the debug one.
GIVEN = os.environ.get("FLUXGATE_PACKAGE_DEB")

PACKAGED = [
    "/usr/bin/fluxgate",
    "/usr/bin/fluxgate-app",
    "/usr/share/applications/Fluxgate.desktop",
    "/usr/share/metainfo/dev.fluxgate.app.metainfo.xml",
    "/usr/share/icons/hicolor/128x128/apps/fluxgate-app.png",
]


def _installed() -> bool:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "fluxgate"], capture_output=True, text=True)
    return r.returncode == 0 and "install ok installed" in r.stdout


def _remove():
    subprocess.run(["apt-get", "remove", "-y", "-qq", "fluxgate"], capture_output=True, text=True,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def http(url, body=None, token=None):
    import urllib.error
    import urllib.request
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def test_the_deb_installs_runs_from_path_and_uninstalls_cleanly():
    if os.geteuid() != 0:
        assert not os.environ.get("CI"), "CI runs as root so this test can install the package"
        pytest.skip("installing a package needs root")
    if _installed():
        _remove()
    profile = "debug"
    if GIVEN:
        deb = Path(GIVEN)
        profile = deb.parents[2].name
    else:
        built = subprocess.run([str(ROOT / "scripts" / "package.sh"), "--debug"], capture_output=True, text=True,
                               timeout=1800, env=dict(os.environ, CI="true"))
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        assert "desktop entry and AppStream metainfo valid" in built.stdout, built.stdout[-2000:]
        deb = next((ROOT / "target" / "debug" / "bundle" / "deb").glob("*.deb"))
    rpm = next((ROOT / "target" / profile / "bundle" / "rpm").glob("*.rpm"))
    assert rpm.stat().st_size > 1_000_000
    info = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Depends", "Recommends"], capture_output=True,
                          text=True, check=True).stdout
    for dep in ("libwebkit2gtk-4.1-0", "libayatana-appindicator3-1", "gnome-keyring"):
        assert dep in info, info

    desk = Desktop()
    keys = {"work": canary()}
    fake = Fake(keys)
    app = None
    started = time.monotonic()
    try:
        inst = subprocess.run(["apt-get", "install", "-y", "-qq", str(deb)], capture_output=True, text=True,
                              timeout=600, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        assert inst.returncode == 0, inst.stderr[-2000:]
        installed_at = time.monotonic()
        for f in PACKAGED:
            assert Path(f).exists(), f
        env = dict(desk.env)
        env["PATH"] = "/usr/bin:/bin"  # the installed binaries, not the checkout's
        version = subprocess.run(["fluxgate", "--version"], env=env, capture_output=True, text=True, check=True)
        assert version.stdout.startswith("fluxgate 0."), version.stdout

        # The user's keychain (a real gnome-keyring on the private bus) and the default places.
        unlock = subprocess.run(["gnome-keyring-daemon", "--unlock", "--components=secrets"], input="test-pass",
                                env=env, capture_output=True, text=True, timeout=20)
        assert unlock.returncode == 0, unlock.stderr
        home = Path(env["HOME"])
        config = home / ".config" / "fluxgate" / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text(f'[providers.oa]\nkind = "openai"\nbase_url = "{fake.url}/v1"\nkeys = [{{ id = "work" }}]\n\n'
                          '[routes.m]\ntargets = ["oa/gpt-4o"]\n')
        stored = subprocess.run(["fluxgate", "keys", "set", "oa/work"], input=keys["work"], env=env,
                                capture_output=True, text=True, timeout=30)
        assert stored.returncode == 0, stored.stderr
        desk.start_mocks()
        err = open(Path(desk.tmp) / "app.err", "w")
        app = subprocess.Popen(["fluxgate-app", "--listen", "127.0.0.1:0"], env=env, stdout=subprocess.PIPE,
                               stderr=err, text=True)
        line = app.stdout.readline()
        assert line.startswith("listening on "), line + (Path(desk.tmp) / "app.err").read_text()[-2000:]
        url = line.split("listening on ", 1)[1].strip()
        data = home / ".local" / "share" / "fluxgate"
        admin = (data / "admin-token").read_text().strip()
        status, body = http(url + "/admin/api/tokens", {"name": "package-test"}, admin)
        assert status == 201, body
        status, body = http(url + "/v1/chat/completions",
                            {"model": "m", "messages": [{"role": "user", "content": "hi"}]}, body["token"])
        first_request = time.monotonic()
        assert status == 200, body
        assert fake.count("work") == 1
        desk.wait_for(lambda: desk.windows("Fluxgate"), 60, "the installed app's window")
        item = desk.tray_item(app.pid)
        assert "keys healthy" in desk.tray_props(item).get("XAyatanaLabel", ""), desk.tray_props(item)
        desk.click(item, "Quit")
        assert app.wait(timeout=30) == 0
        app = None
        timing = {"install_s": round(installed_at - started, 2),
                  "install_to_first_request_s": round(first_request - started, 2),
                  "deb_mib": round(deb.stat().st_size / 1048576, 1), "rpm_mib": round(rpm.stat().st_size / 1048576, 1)}
        print("package timing:", json.dumps(timing))

        # Uninstall: the package's files go, the user's things stay.
        removed = subprocess.run(["apt-get", "remove", "-y", "-qq", "fluxgate"], capture_output=True, text=True,
                                 timeout=300, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        assert removed.returncode == 0, removed.stderr
        assert not _installed()
        for f in PACKAGED:
            assert not Path(f).exists(), f"{f} is still there after apt-get remove"
        assert config.exists() and "providers.oa" in config.read_text()
        assert (data / "admin-token").exists() and any(data.glob("*.db")), list(data.iterdir())
        found = subprocess.run(["secret-tool", "lookup", "service", "fluxgate", "username", "oa/work"], env=env,
                               capture_output=True, text=True, timeout=20)
        assert found.returncode == 0, "the keychain entry is gone"
        assert hashlib.sha256(found.stdout.strip().encode()).hexdigest() == \
            hashlib.sha256(keys["work"].encode()).hexdigest(), "the keychain entry changed"
    finally:
        if app is not None and app.poll() is None:
            app.kill()
        if _installed():
            _remove()
        fake.proc.terminate()
        desk.close()
