#!/usr/bin/env python3
"""Drives the real desktop window through tauri-driver and WebKitWebDriver (W3C
WebDriver over HTTP; standard library only). Run inside a display and a D-Bus session:

    xvfb-run -a dbus-run-session -- python3 tests/desktop_window.py target/debug/metasync-desktop

(D-Bus inside the display, so the services it starts can open it.)

Starts tauri-driver on free loopback ports, opens the app, checks what the window
shows, saves a screenshot to target/desktop-window.png and stops everything."""
import base64, http.client, json, os, socket, subprocess, sys, time, urllib.error, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriver:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method, path, body=None, timeout=60, reads=True):
        """One WebDriver command. `reads`: it changes nothing, so a connection that
        tauri-driver's proxy drops before answering (it happens now and then, as with
        other WebDriver servers) is tried again, twice at most."""
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(3 if reads else 1):
            req = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    return json.loads(r.read() or b"{}").get("value")
            except urllib.error.HTTPError as e:
                raise AssertionError(f"{method} {path}: HTTP {e.code}: {e.read().decode(errors='replace')}")
            except (http.client.RemoteDisconnected, ConnectionResetError) as e:
                if attempt == (2 if reads else 0):
                    raise
                print(f"note: {method} {path}: {e!r}; trying again", flush=True)
                time.sleep(0.5)

    def wait_ready(self, proc, seconds=30):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"tauri-driver exited with {proc.returncode}")
            try:
                self.call("GET", "/status", timeout=2, reads=False)
                return
            except (OSError, AssertionError):
                time.sleep(0.2)
        raise AssertionError("tauri-driver did not come up")


def main():
    app = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/debug/metasync-desktop"))
    port, native = free_port(), free_port()
    env = dict(os.environ, LIBGL_ALWAYS_SOFTWARE="1")
    driver = subprocess.Popen(["tauri-driver", "--port", str(port), "--native-port", str(native)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    passed, failed = 0, 0
    session = None
    wd = WebDriver(port)
    try:
        wd.wait_ready(driver)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "wry", "tauri:options": {"application": app}}}}
        print("tauri-driver is up; opening the app", flush=True)
        session = wd.call("POST", "/session", caps, timeout=120, reads=False)["sessionId"]
        print("session open", flush=True)
        s = f"/session/{session}"

        def check(name, ok, detail=""):
            nonlocal passed, failed
            print(("ok   " if ok else "FAIL ") + name + (f": {detail}" if detail and not ok else ""))
            passed, failed = passed + ok, failed + (not ok)

        def text_of(css):
            el = wd.call("POST", s + "/element", {"using": "css selector", "value": css})
            return wd.call("GET", f"{s}/element/{list(el.values())[0]}/text")

        title = wd.call("GET", s + "/title")
        check("the page is the Metasync UI", title == "Metasync", repr(title))
        heading = text_of("header h1")
        check("the header names the app", heading == "Metasync", repr(heading))
        drop = text_of(".drop")
        check("the drop zone is shown", "Drop CSV files here" in drop, repr(drop))
        steps = wd.call("POST", s + "/elements", {"using": "css selector", "value": "ol li"})
        check("the five steps are listed", len(steps) == 5, f"{len(steps)} items")
        png = base64.b64decode(wd.call("GET", s + "/screenshot", timeout=30))
        out = os.path.join(ROOT, "target", "desktop-window.png")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "wb") as f:
            f.write(png)
        check("the window renders (screenshot)", png.startswith(b"\x89PNG") and len(png) > 5000, f"{len(png)} bytes")
    except (OSError, AssertionError) as e:
        print(f"FAIL the WebDriver conversation broke off: {e!r}")
        failed += 1
    finally:
        if session:
            try:
                wd.call("DELETE", f"/session/{session}", timeout=20, reads=False)
            except (OSError, AssertionError) as e:
                print(f"closing the session: {e}", file=sys.stderr)
        driver.terminate()
        try:
            driver.wait(timeout=10)
        except subprocess.TimeoutExpired:
            driver.kill()
        if failed or not passed:
            sys.stderr.write(driver.stderr.read().decode(errors="replace")[-4000:])
    print(f"{passed} passed, {failed} failed")
    return 0 if passed and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
