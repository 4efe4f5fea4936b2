"""A headless desktop for testing the app: Xvfb, a private D-Bus session bus, a mocked
notification daemon and StatusNotifierWatcher (Debian's python3-dbusmock, run by
/usr/bin/python3), and helpers to read the tray (StatusNotifierItem + dbusmenu) over D-Bus.
See ../shared/DESKTOP-TESTING.md."""

import ctypes
import ctypes.util
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

SYSTEM_PY = "/usr/bin/python3"

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir={tmp}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def _free_display() -> int:
    for n in range(70, 120):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number")


class Desktop:
    """Xvfb + a private session bus (no service activation: only what the test starts)."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="fluxgate-desktop-")
        self.procs = []
        n = _free_display()
        self.display = f":{n}"
        self.procs.append(subprocess.Popen(["Xvfb", self.display, "-screen", "0", "1440x900x24", "-nolisten", "tcp"],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.time() + 10
        while not Path(f"/tmp/.X11-unix/X{n}").exists():
            if time.time() > deadline:
                raise RuntimeError("Xvfb did not start")
            time.sleep(0.05)
        conf = Path(self.tmp) / "bus.conf"
        # Sockets go under /tmp: a checkout's deep TMPDIR could pass the 108-byte limit of a
        # Unix socket path.
        self.run_dir = tempfile.mkdtemp(prefix="fg-", dir="/tmp")
        conf.write_text(BUS_CONFIG.format(tmp=self.run_dir))
        bus = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork", "--print-address=1"],
                               stdout=subprocess.PIPE, text=True)
        self.procs.append(bus)
        self.bus = bus.stdout.readline().strip()
        home = Path(self.tmp) / "home"
        home.mkdir()
        self.env = dict(os.environ, DISPLAY=self.display, DBUS_SESSION_BUS_ADDRESS=self.bus, HOME=str(home),
                        XDG_CONFIG_HOME=str(home / ".config"), XDG_DATA_HOME=str(home / ".local/share"),
                        XDG_CACHE_HOME=str(home / ".cache"), XDG_RUNTIME_DIR=self.run_dir, NO_AT_BRIDGE="1",
                        GTK_A11Y="none", WEBKIT_DISABLE_COMPOSITING_MODE="1")
        self.env.pop("WAYLAND_DISPLAY", None)

    def start_mocks(self):
        """The notification daemon template and a StatusNotifierWatcher that accepts items."""
        self.procs.append(subprocess.Popen([SYSTEM_PY, "-m", "dbusmock", "--template", "notification_daemon"],
                                           env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.procs.append(subprocess.Popen([SYSTEM_PY, "-m", "dbusmock", "org.kde.StatusNotifierWatcher",
                                            "/StatusNotifierWatcher", "org.kde.StatusNotifierWatcher"],
                                           env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.wait_for(lambda: self.has_name("org.freedesktop.Notifications")
                      and self.has_name("org.kde.StatusNotifierWatcher"), 15, "the dbusmock services")
        w = ["-d", "org.kde.StatusNotifierWatcher", "-o", "/StatusNotifierWatcher"]
        self.gdbus(*w, "-m", "org.freedesktop.DBus.Mock.AddMethod", "org.kde.StatusNotifierWatcher",
                   "RegisterStatusNotifierItem", "s", "", "")
        self.gdbus(*w, "-m", "org.freedesktop.DBus.Mock.AddProperty", "org.kde.StatusNotifierWatcher",
                   "IsStatusNotifierHostRegistered", "<true>")

    def gdbus(self, *args, check=True) -> str:
        r = subprocess.run(["gdbus", "call", "--session", *args], env=self.env, capture_output=True, text=True,
                           timeout=10)
        if check and r.returncode != 0:
            raise RuntimeError(f"gdbus {args}: {r.stderr.strip()}")
        return r.stdout.strip()

    def has_name(self, name: str) -> bool:
        out = self.gdbus("-d", "org.freedesktop.DBus", "-o", "/org/freedesktop/DBus", "-m",
                         "org.freedesktop.DBus.ListNames", check=False)
        return f"'{name}'" in out

    @staticmethod
    def wait_for(cond, timeout: float, what: str, every: float = 0.1):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = cond()
            if v:
                return v
            time.sleep(every)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    # --- notifications ---
    def notifications(self) -> list:
        """(app name, summary, body) of every Notify call so far."""
        out = self.gdbus("-d", "org.freedesktop.Notifications", "-o", "/org/freedesktop/Notifications", "-m",
                         "org.freedesktop.DBus.Mock.GetCalls")
        calls = []
        for m in re.finditer(r"'Notify', \[<'((?:[^'\\]|\\.)*)'>, <uint32 \d+>, <'[^']*'>, <'((?:[^'\\]|\\.)*)'>, "
                             r"<'((?:[^'\\]|\\.)*)'>", out):
            calls.append((m.group(1), m.group(2), m.group(3)))
        return calls

    # --- tray ---
    def tray_item(self, pid: int):
        """(bus name, object path) of the app's StatusNotifierItem, once it registered."""
        def registered():
            out = self.gdbus("-d", "org.kde.StatusNotifierWatcher", "-o", "/StatusNotifierWatcher", "-m",
                             "org.freedesktop.DBus.Mock.GetCalls")
            m = re.search(r"RegisterStatusNotifierItem', \[<'([^']+)'>", out)
            return m.group(1) if m else None
        path = self.wait_for(registered, 30, "the tray to register with the StatusNotifierWatcher")
        names = re.findall(r"'(:[0-9.]+)'", self.gdbus("-d", "org.freedesktop.DBus", "-o", "/org/freedesktop/DBus",
                                                         "-m", "org.freedesktop.DBus.ListNames"))
        for name in names:
            out = self.gdbus("-d", "org.freedesktop.DBus", "-o", "/org/freedesktop/DBus", "-m",
                             "org.freedesktop.DBus.GetConnectionUnixProcessID", name, check=False)
            m = re.match(r"\(uint32 (\d+),\)", out)
            if not m or int(m.group(1)) != pid:
                continue
            got = self.gdbus("-d", name, "-o", path, "-m", "org.freedesktop.DBus.Properties.GetAll",
                             "org.kde.StatusNotifierItem", check=False)
            if got:
                return name, path
        raise AssertionError("no connection of the app answers for its StatusNotifierItem")

    def tray_props(self, item) -> dict:
        out = self.gdbus("-d", item[0], "-o", item[1], "-m", "org.freedesktop.DBus.Properties.GetAll",
                         "org.kde.StatusNotifierItem")
        props = {}
        for k, v in re.findall(r"'(\w+)': <'((?:[^'\\]|\\.)*)'>", out):
            props[k] = v
        m = re.search(r"'Menu': <objectpath '([^']+)'>", out)
        if m:
            props["Menu"] = m.group(1)
        return props

    def menu(self, item) -> dict:
        """label -> (id, toggle-state or None) of every menu item."""
        path = self.tray_props(item)["Menu"]
        out = self.gdbus("-d", item[0], "-o", path, "-m", "com.canonical.dbusmenu.GetLayout", "--", "0", "-1", "[]")
        items = {}
        for m in re.finditer(r"\((\d+), \{([^{}]*)\}", out):
            props = m.group(2)
            label = re.search(r"'label': <'((?:[^'\\]|\\.)*)'>", props)
            if not label:
                continue
            toggle = re.search(r"'toggle-state': <(-?\d+)>", props)
            items[label.group(1).replace("__", "_")] = (int(m.group(1)), int(toggle.group(1)) if toggle else None)
        return items

    def click(self, item, label_prefix: str):
        menu = self.menu(item)
        matches = [(label, v) for label, v in menu.items() if label.startswith(label_prefix)]
        assert matches, f"no menu item starting with {label_prefix!r} in {list(menu)}"
        ident = matches[0][1][0]
        path = self.tray_props(item)["Menu"]
        self.gdbus("-d", item[0], "-o", path, "-m", "com.canonical.dbusmenu.Event", "--", str(ident), "clicked", "<0>", "0")

    # --- windows ---
    def windows(self, name: str) -> list:
        r = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", name], env=self.env,
                           capture_output=True, text=True)
        return [int(w) for w in r.stdout.split()]

    def close_window(self, wid: int):
        """Asks the window to close as a window manager would (WM_DELETE_WINDOW)."""
        x11 = ctypes.CDLL(ctypes.util.find_library("X11"))
        x11.XOpenDisplay.restype = ctypes.c_void_p
        x11.XInternAtom.restype = ctypes.c_ulong
        x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
        x11.XFlush.argtypes = [ctypes.c_void_p]
        x11.XCloseDisplay.argtypes = [ctypes.c_void_p]

        class ClientMessage(ctypes.Structure):
            _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                        ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                        ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]

        class XEvent(ctypes.Union):
            _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]

        dpy = x11.XOpenDisplay(self.display.encode())
        assert dpy, "cannot open the X display"
        protocols = x11.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
        delete = x11.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
        ev = XEvent()
        ev.xclient.type = 33  # ClientMessage
        ev.xclient.window = wid
        ev.xclient.message_type = protocols
        ev.xclient.format = 32
        ev.xclient.data[0] = delete
        ev.xclient.data[1] = 0  # CurrentTime
        x11.XSendEvent(dpy, wid, 0, 0, ctypes.byref(ev))
        x11.XFlush(dpy)
        x11.XCloseDisplay(dpy)

    def screenshot(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["import", "-window", "root", str(path)], env=self.env, check=True, timeout=30)

    def clipboard(self) -> str:
        r = subprocess.run(["xclip", "-o", "-selection", "clipboard"], env=self.env, capture_output=True, text=True,
                           timeout=5)
        return r.stdout

    def close(self):
        for p in reversed(self.procs):
            p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.run_dir, ignore_errors=True)


def pss_tree_kib(pid: int) -> int:
    """PSS of a process and all its descendants (smaps_rollup)."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
        try:
            for t in Path(f"/proc/{p}/task").iterdir():
                kids = (t / "children").read_text().split()
                todo.extend(int(k) for k in kids)
        except OSError:
            pass
    return total


def children(pid: int) -> list:
    out = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for t in tasks:
        try:
            out += [int(k) for k in (t / "children").read_text().split()]
        except OSError:
            pass
    return out


def descendants(pid: int) -> list:
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
