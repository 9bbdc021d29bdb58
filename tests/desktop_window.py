#!/usr/bin/env python3
"""Drives the real desktop window through tauri-driver and WebKitWebDriver (W3C
WebDriver over HTTP; standard library only). Run inside a display and a D-Bus session:

    xvfb-run -a dbus-run-session -- python3 tests/desktop_window.py APP METASYNC

APP is a `metasync-desktop` built with the `test-hooks` feature (files open through the
same Rust path a drop takes, and saves go to a folder instead of a native dialog);
METASYNC is the CLI, used to make the files and to check the saved one.

The workbench, as staff use it: a broken episode file is opened → its error count and
a highlighted cell show → filter to errors → fix a cell → the count drops → bulk-fix a
column of US dates → save the corrected file → `metasync validate` accepts it. An
export with its own headers → the mapping editor. Settings: a production profile made
in the form (a refused value shown in the CLI's words), its credentials into a real
gnome-keyring, a connection test against the sandbox, and the CLI using what the window
wrote; the header turns red on that profile. Then a 1,000,000-row file: jump to row
900,000 and read its key from the grid. Screenshots of each screen go to
target/desktop/."""
from types import SimpleNamespace
import base64, csv, glob, http.client, json, os, re, shutil, socket, sqlite3, subprocess, sys, tempfile, time, urllib.error, urllib.request

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
        attempts = 5 if reads else 1
        for attempt in range(attempts):
            req = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    return json.loads(r.read() or b"{}").get("value")
            except urllib.error.HTTPError as e:
                raise AssertionError(f"{method} {path}: HTTP {e.code}: {e.read().decode(errors='replace')}")
            except (http.client.RemoteDisconnected, ConnectionResetError) as e:
                if attempt == attempts - 1:
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


ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
BROKEN_ROWS = 200
US_DATES = range(10, 20)  # 0-based rows whose premiered_on is written M/D/YYYY
BAD_SLUG_ROW = 5
NEW_TITLE = "A title staff changed in the window"
SANDBOX_SECRET = "sandbox-secret"  # what the sandbox accepts (as `metasync sandbox` documents)


REFUSED = "DRAFT"  # the ops sandbox refuses titles holding it


def address_of(log):
    """The URL a `metasync sandbox` printed to its log."""
    for _ in range(100):
        log.seek(0)
        found = re.search(r"http://127\.0\.0\.1:\d+", log.read())
        if found:
            return found.group(0)
        time.sleep(0.1)
    raise AssertionError("a sandbox did not say its address")


def ops_catalog(tmp):
    """Two shows, their seasons, three episodes; one title the sandbox refuses."""
    d = os.path.join(tmp, "ops-catalog")
    os.makedirs(d)
    files = {
        "shows.csv": [["show_key", "slug", "title", "audience", "language"],
                      ["OPS1", "ops-nova", "Ops Nova", "national", "en"],
                      ["OPS2", "ops-frontline", "Ops Frontline", "national", "en"]],
        "seasons.csv": [["season_key", "show_key", "ordinal"], ["OPS1-S1", "OPS1", "1"], ["OPS2-S1", "OPS2", "1"]],
        "episodes.csv": [["episode_key", "season_key", "ordinal", "slug", "title", "description_short",
                          "description_long", "premiered_on"],
                         ["OPS1-S1-E1", "OPS1-S1", "1", "owls", "Owls", "Short.", "Long.", "2024-01-05"],
                         ["OPS1-S1-E2", "OPS1-S1", "2", "bats", f"Bats {REFUSED}", "Short.", "Long.", "2024-01-12"],
                         ["OPS2-S1-E1", "OPS2-S1", "1", "votes", "Votes", "Short.", "Long.", "2024-01-19"]],
    }
    for name, rows in files.items():
        with open(os.path.join(d, name), "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)
    return [os.path.join(d, n) for n in files]


BENCH_SHOWS = 241  # about 83 records a show: a 20,000-record catalog
BENCH_QUOTA = 300  # requests a second, the sandbox's and the profile's


def bench_sync(tmp, cli, app_env, config_file, w):
    """`make bench-window`: a 20,000-record sync from the window against a sandbox at
    its quota; how often progress arrives, and how fast the window answers clicks
    meanwhile (a screen switch in the page, and a command's round trip)."""
    log = open(os.path.join(tmp, "sandbox-bench.log"), "w+")
    sb = subprocess.Popen([cli, "sandbox", "--port", "0", "--access", "pbs", "--quota", str(BENCH_QUOTA), "--burst", "20",
                           "--latency-ms", "20"], stdout=log, stderr=subprocess.STDOUT, env=app_env)
    try:
        url = address_of(log)
        cat = os.path.join(tmp, "bench-catalog")
        subprocess.run([cli, "gen", "--catalog", "--shows", str(BENCH_SHOWS), "--seed", "11", "--out", cat], check=True,
                       capture_output=True)
        files = [os.path.join(cat, f"{t}.csv") for t in ("shows", "seasons", "episodes", "assets")]
        records = sum(sum(1 for _ in open(f, encoding="utf-8")) - 1 for f in files)
        with open(config_file, "a") as f:
            f.write(f'\n[profiles.bench]\ndata_dir = "{os.path.join(tmp, "bench-data")}"\n[profiles.bench.target]\n'
                    f'dialect = "media_manager"\naccess = "pbs"\nurl = "{url}/api/v1"\nquota = {BENCH_QUOTA}\nburst = 20\n')
        subprocess.run([cli, "credentials", "set", "--profile", "bench", "--from-stdin"], input="sandbox-key\nsandbox-secret\n",
                       text=True, env=app_env, cwd=tmp, check=True, capture_output=True)
        w.open_files(files)
        w.wait_for("the bench catalog validated", lambda: all(f["indexed"] and not f["checking"]
                                                              for f in w.invoke("workbench_files", {})), seconds=120)
        w.press("header button[data-screen=plan]", "the plan screen", lambda: w.find_all("[role=dialog][aria-label=Plan]"))
        w.until("the bench profile", lambda _: w.run("document.querySelector('select[aria-label=Profile]').focus()"),
              lambda: w.find_all("select[aria-label=Profile] option[value=bench]"), seconds=10)
        w.select("Profile", "bench")
        w.wait_for("the bench plan", lambda: "bench" in w.text(w.find(".plan-head")) and "Planning" not in w.text(w.find(".plan-head"))
                 and w.find_all("[data-count=new]"), seconds=120)
        w.click(w.find("button[data-action=sync]"), idempotent=False)
        w.wait_for("the workers", lambda: w.run("const p = document.querySelector('.sync-progress');"
                                           "return p && p.dataset.stage === 'working'"), seconds=120)
        samples, clicks, trips = [], [], []
        switch = """const done = arguments[arguments.length - 1];
            const b = document.querySelector("header button[data-screen=runs]");
            const t0 = performance.now(); b.click();
            const look = () => document.querySelector("[role=dialog][aria-label=Runs]")
              ? (document.querySelector("header button[data-screen=plan]").click(), done(performance.now() - t0))
              : requestAnimationFrame(look);
            look();"""
        trip = """const done = arguments[arguments.length - 1]; const t0 = performance.now();
            window.__TAURI_INTERNALS__.invoke("profile_active").then(() => done(performance.now() - t0));"""
        while True:
            state = w.run("const p = document.querySelector('.sync-progress');"
                        "return p ? [p.dataset.stage, Number(p.dataset.updates), performance.now()] : null")
            if not state or state[0] != "working":
                break
            samples.append((state[2], state[1]))
            try:
                clicks.append(w.run_async(switch))
                trips.append(w.run_async(trip))
            except AssertionError:
                pass
            time.sleep(1)
        done = w.wait_for("the bench sync's end", lambda: w.find_all("[data-testid=sync-done]"), seconds=600)[0]
        synced = int(w.run("return arguments[0].dataset.synced", {ELEMENT: done}))
        (t0, n0), (t1, n1) = samples[0], samples[-1]
        hz = (n1 - n0) / max(0.001, (t1 - t0) / 1000)
        q = lambda v, p: sorted(v)[min(len(v) - 1, int(p * len(v)))] if v else float("nan")
        print(f"     bench: {records:,} records, {synced:,} synced in {(t1 - t0) / 1000:.0f} s of work "
              f"(quota {BENCH_QUOTA}/s); progress {hz:.1f} updates/s (goal >= 4); "
              f"screen switch p50 {q(clicks, .5):.0f} ms, p95 {q(clicks, .95):.0f} ms, max {max(clicks or [0]):.0f} ms; "
              f"command round trip p50 {q(trips, .5):.0f} ms, p95 {q(trips, .95):.0f} ms, max {max(trips or [0]):.0f} ms "
              f"over {len(clicks)} clicks (goal <= 100)", flush=True)
        w.close_all()
    finally:
        sb.terminate()
        log.close()


def make_files(cli, tmp):
    """A broken episode file (a bad slug, ten US dates) and a 1M-row clean one."""
    broken = os.path.join(tmp, "episodes-broken.csv")
    subprocess.run([cli, "gen", "--type", "episode", "--rows", str(BROKEN_ROWS), "--seed", "3", "--out", broken], check=True)
    with open(broken, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    slug, prem = head.index("slug"), head.index("premiered_on")
    rows[1 + BAD_SLUG_ROW][slug] = "Bad Slug"
    for r in US_DATES:
        y, m, d = rows[1 + r][prem].split("-")
        rows[1 + r][prem] = f"{int(m)}/{int(d)}/{y}"
    with open(broken, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\r\n").writerows(rows)
    big = os.path.join(tmp, "episodes-1m.csv")
    subprocess.run([cli, "gen", "--type", "episode", "--rows", "1000000", "--seed", "5", "--out", big], check=True)
    key = None
    with open(big, newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.reader(f)):
            if i == 900_000:  # the header is line 0: data row 900,000
                key = row[0]
                break
    return broken, big, key, head


def memory_of(app):
    """The app's processes (the app and WebKit's, its descendants): PSS summed (shared
    pages split between the processes that map them), RSS summed, and PSS per process,
    in MiB. A measurement printed, not a check."""
    parents, names, roots = {}, {}, []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            names[int(d)] = stat[stat.index("(") + 1:stat.rindex(")")]
            parents[int(d)] = int(stat[stat.rindex(")") + 2:].split()[1])
            if os.path.realpath(f"/proc/{d}/exe") == os.path.realpath(app):
                roots.append(int(d))
        except (OSError, ValueError, IndexError):
            continue
    if not roots:
        return None
    tree = set(roots)
    grew = True
    while grew:
        more = {p for p, pp in parents.items() if pp in tree and p not in tree}
        tree |= more
        grew = bool(more)
    pss = rss = 0.0
    parts = []
    for p in sorted(tree):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                fields = {l.split(":")[0]: int(l.split()[1]) for l in f if l.split()[-1:] == ["kB"]}
        except (OSError, ValueError):
            continue
        pss += fields.get("Pss", 0) / 1024
        rss += fields.get("Rss", 0) / 1024
        parts.append((names.get(p, str(p)), fields.get("Pss", 0) / 1024))
    return pss, rss, parts


def main():
    app = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/debug/metasync-desktop"))
    cli = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "target/debug/metasync"))
    tmp = tempfile.mkdtemp(prefix="metasync-window-")
    shots = os.path.join(ROOT, "target", "desktop")
    os.makedirs(shots, exist_ok=True)
    saves = os.path.join(tmp, "saved")
    os.makedirs(saves)
    port, native = free_port(), free_port()
    config = os.path.join(tmp, "config")  # where the app keeps mapping profiles
    # The settings screen writes the user's file; the CLI, run from a folder with no
    # metasync.toml and no --config, must find it there too.
    config_file = os.path.join(config, "metasync", "metasync.toml")
    home = os.path.join(tmp, "home")  # a throwaway keyring lives here
    os.makedirs(os.path.join(home, "run"), mode=0o700)
    env = dict(os.environ, LIBGL_ALWAYS_SOFTWARE="1", METASYNC_TEST_SAVE_DIR=saves, XDG_CONFIG_HOME=config,
               HOME=home, XDG_DATA_HOME=os.path.join(home, "data"),
               XDG_RUNTIME_DIR=os.path.join(home, "run"))
    for var in ("METASYNC_TARGET_KEY", "METASYNC_TARGET_SECRET", "METASYNC_CONFIG"):
        env.pop(var, None)
    # The OS keychain: gnome-keyring's Secret Service on this D-Bus session, unlocked.
    unlocked = subprocess.run(["gnome-keyring-daemon", "--unlock", "--components=secrets"], input=b"\n",
                              capture_output=True, env=env, check=True)
    for line in unlocked.stdout.decode().splitlines():
        k, _, v = line.partition("=")
        if k.startswith("GNOME_KEYRING"):
            env[k] = v
    app_env = env
    # The target: the sandbox (Media Manager as documented), on a free port.
    sandbox_log = open(os.path.join(tmp, "sandbox.log"), "w+")
    sandbox = subprocess.Popen([cli, "sandbox", "--port", "0"], stdout=sandbox_log, stderr=subprocess.STDOUT, env=env)
    # The operations room's target: a PBS key (shows may change), one title refused.
    ops_log = open(os.path.join(tmp, "sandbox-ops.log"), "w+")
    ops_sandbox = subprocess.Popen([cli, "sandbox", "--port", "0", "--access", "pbs", "--refuse-title", REFUSED],
                                   stdout=ops_log, stderr=subprocess.STDOUT, env=env)
    # Its log goes to a file: a pipe would block the read below while a child it
    # started (WebKitWebDriver) still holds the pipe open.
    driver_log = open(os.path.join(tmp, "tauri-driver.log"), "w+b")
    driver = subprocess.Popen(["tauri-driver", "--port", str(port), "--native-port", str(native)],
                              env=env, stdout=subprocess.DEVNULL, stderr=driver_log)
    passed, failed = 0, 0
    session = None
    wd = WebDriver(port)
    try:
        broken, big, big_key, head = make_files(cli, tmp)
        # A catalog synced by the demo (embedded backend, in-process sandbox).
        subprocess.run([cli, "demo", "--dir", os.path.join(tmp, "demo")], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        demo_data = os.path.join(tmp, "demo", "data")
        demo_shows = os.path.join(tmp, "demo", "catalog", "shows.csv")
        with open(demo_shows, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        demo_title_col = rows[0].index("title")
        demo_show_key, demo_old_title = rows[1][0], rows[1][demo_title_col]
        demo_shows_rows = rows[1:]
        sandbox_url, ops_url = address_of(sandbox_log), address_of(ops_log)
        wd.wait_ready(driver)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "wry", "tauri:options": {"application": app}}}}
        print("tauri-driver is up; opening the app", flush=True)
        session = wd.call("POST", "/session", caps, timeout=120, reads=False)["sessionId"]
        print("session open", flush=True)
        s = f"/session/{session}"

        def check(name, ok, detail=""):
            nonlocal passed, failed
            print(("ok   " if ok else "FAIL ") + name + (f": {detail}" if detail and not ok else ""), flush=True)
            passed, failed = passed + bool(ok), failed + (not ok)
            return ok

        def find_all(css):
            return [list(e.values())[0] for e in wd.call("POST", s + "/elements", {"using": "css selector", "value": css})]

        def find(css):
            found = find_all(css)
            if not found:
                raise AssertionError(f"nothing matches {css}")
            return found[0]

        def text(el):
            return wd.call("GET", f"{s}/element/{el}/text")

        def click(el, idempotent=True):
            # tauri-driver's proxy now and then drops a connection before answering;
            # a click that does the same thing twice (a tab, an option, Preview, Save
            # mapping) is retried. Apply is not (see below).
            wd.call("POST", f"{s}/element/{el}/click", {}, reads=idempotent)

        def type_into(el, keys):
            try:
                wd.call("POST", f"{s}/element/{el}/value", {"text": keys}, reads=False)
            except (http.client.RemoteDisconnected, ConnectionResetError) as e:
                # Not retried (the keys may have gone through); what follows checks.
                print(f"note: typing's answer was lost ({e!r})", flush=True)

        def until(what, act, probe, seconds, tries=3):
            """The one retry driver for actions whose answer tauri-driver may drop: do
            `act(attempt)`, wait for `probe`, and act again only when it never comes
            true (every action passed here is safe to do twice)."""
            for i in range(tries):
                act(i)
                try:
                    return wait_for(what, probe, seconds=seconds)
                except AssertionError:
                    if i == tries - 1:
                        raise
                    print(f"note: {what}: trying again", flush=True)

        def type_and_wait(css, keys, what, probe):
            """Type into the field `css`, then wait for `probe`; typed again (cleared
            first) unless the field is gone (Enter went through)."""
            def act(i):
                fields = find_all(css)
                if fields:
                    if i > 0:
                        wd.call("POST", f"{s}/element/{fields[0]}/clear", {}, reads=True)
                    type_into(fields[0], keys)
            return until(what, act, probe, seconds=10)

        def run(script, *args):
            return wd.call("POST", s + "/execute/sync", {"script": script, "args": list(args)})

        def run_async(script, *args):
            return wd.call("POST", s + "/execute/async", {"script": script, "args": list(args)}, timeout=60)

        def invoke(cmd, args):
            done = wd.call("POST", s + "/execute/async", {
                "script": "const done = arguments[arguments.length - 1];"
                          "window.__TAURI_INTERNALS__.invoke(arguments[0], arguments[1])"
                          ".then(r => done(JSON.stringify(r)), e => done('ERR ' + e));",
                "args": [cmd, args]}, timeout=120)
            if isinstance(done, str) and done.startswith("ERR"):
                raise AssertionError(f"{cmd}: {done}")
            return json.loads(done)

        def open_files(paths):
            """Open through the drop's Rust path. The summaries come from the file list:
            when tauri-driver drops the answer, the retried call says "already open"."""
            results = invoke("test_open_paths", {"paths": paths})
            errors = [r["error"] for r in results if r.get("error") and "already open" not in r["error"]]
            if errors:
                raise AssertionError(f"opening {paths}: {errors}")
            files = {os.path.realpath(f["path"]): f for f in invoke("workbench_files", {})}
            return [files.get(os.path.realpath(p)) for p in paths]

        def wait_for(what, probe, seconds=60):
            deadline = time.monotonic() + seconds
            last = None
            while time.monotonic() < deadline:
                try:
                    last = probe()
                    if last:
                        return last
                except AssertionError as e:
                    last = e
                time.sleep(0.1)
            raise AssertionError(f"timed out waiting for {what} (last: {last!r})")

        def screenshot(name):
            png = base64.b64decode(wd.call("GET", s + "/screenshot", timeout=30))
            with open(os.path.join(shots, name + ".png"), "wb") as f:
                f.write(png)
            return png

        def error_count():
            t = text(find("[data-testid=error-count]"))
            return int(t.split()[0].replace(",", "")) if t.endswith("rows with errors") else None

        def press(css, what, probe):
            """Click the button `css`, then wait for `probe` (clicked again only when it
            never comes true)."""
            def act(_):
                buttons = find_all(css)
                if buttons:
                    try:
                        wd.call("POST", f"{s}/element/{buttons[0]}/click", {}, reads=False)
                    except (http.client.RemoteDisconnected, ConnectionResetError) as e:
                        print(f"note: {what}: the click's answer was lost ({e!r})", flush=True)
            return until(what, act, probe, seconds=15)

        def fill(css, value):
            """Type `value` into the field `css` as staff would; the field's value is
            read back, and typed again when the keys did not arrive."""
            def act(_):
                el = find(css)
                wd.call("POST", f"{s}/element/{el}/clear", {}, reads=True)
                type_into(el, value)
            holds = "return document.querySelector(arguments[0]).value === arguments[1]"
            return until(f"{css} to hold the value", act, lambda: run(holds, css, value), seconds=5)

        def close_all():
            # Every open file, closed (a retried close whose first one went through is fine).
            for f in invoke("workbench_files", {}):
                try:
                    invoke("workbench_close", {"id": f["id"]})
                except AssertionError as e:  # a retried close whose first one went through
                    if "no open file" not in str(e):
                        raise

        def select(label, value):
            opt = find(f"select[aria-label='{label}'] option[value='{value}']")
            click(opt, idempotent=True)

        title = wd.call("GET", s + "/title")
        check("the page is the Metasync UI", title == "Metasync", repr(title))
        # The title comes with index.html; React renders a moment later.
        drop = text(wait_for("the first render", lambda: find_all(".drop"))[0])
        check("the drop zone is shown", "Drop CSV files here" in drop, repr(drop))
        # The DOM can be ready a moment before the first paint: wait for a picture.
        png = wait_for("a painted window", lambda: (lambda p: len(p) > 5000 and p)(screenshot("1-drop")), seconds=15)
        check("the window renders (screenshot)", png.startswith(b"\x89PNG") and len(png) > 5000, f"{len(png)} bytes")

        # Open the broken file the way a drop does.
        opened = open_files([broken])
        check("the broken file opens", opened[0] is not None, repr(opened))
        n = wait_for("validation", lambda: error_count() is not None and error_count())
        check("the error count shows 11 rows with errors", n == 11, repr(n))
        bad = find_all(".grid-row .cell.bad")
        check("a highlighted cell is visible", len(bad) > 0, f"{len(bad)} cells")
        info = text(find(".file-info"))
        check("type, encoding and delimiter are shown", "episode" in info.lower() and "UTF-8" in info and "comma" in info, repr(info))
        screenshot("2-errors")

        select("Filter", "invalid")
        total = wait_for("the filtered grid", lambda: run("return document.querySelector('.grid').dataset.total") == "11" and "11")
        rows = wait_for("rows in the filter", lambda: len(find_all(".grid-row")) == 11 and 11)
        check("filtering to errors leaves the 11 broken rows", total == "11" and rows == 11, f"{total} {rows}")
        screenshot("3-filtered")

        # Fix the bad slug in place: double-click, type, Enter.
        slug_col = head.index("slug")
        cell = find(f".grid-row[data-row='{BAD_SLUG_ROW}'] .cell[data-col='{slug_col}']")
        check("the bad slug is the highlighted cell", "bad" in run("return arguments[0].className", {ELEMENT: cell}))
        wd.call("POST", s + "/actions", {"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [{"type": "pointerMove", "origin": {ELEMENT: cell}, "x": 0, "y": 0},
                        {"type": "pointerDown", "button": 0}, {"type": "pointerUp", "button": 0},
                        {"type": "pointerDown", "button": 0}, {"type": "pointerUp", "button": 0}]}]}, reads=False)
        wd.call("DELETE", s + "/actions", reads=False)
        wait_for("the cell editor", lambda: find("input.editor"))
        n = type_and_wait("input.editor", "bad-slug\ue007", "revalidation", lambda: error_count() == 10 and 10)
        check("fixing the cell drops the count to 10", n == 10, repr(n))
        screenshot("4-edited")

        # Bulk-fix the premiered_on column: preview, then apply.
        select("Fix column", str(head.index("premiered_on")))
        select("Fix kind", "us_date")
        click(find(".fix-actions button"), idempotent=True)
        preview = wait_for("the preview", lambda: text(find("[data-testid=fix-preview]")))
        check("the preview says 10 cells will change", preview.startswith("10 cells will change"), repr(preview))
        screenshot("5-bulk-fix")
        # Apply again changes nothing (the dates are ISO by then): safe to press twice.
        n = press(".fix-panel .fix-actions button:nth-of-type(2)", "revalidation", lambda: error_count() == 0 and "0")
        check("the bulk fix clears the last errors", n == "0", repr(n))

        saved = invoke("workbench_save", {"id": opened[0]["id"], "format": "original"})
        check("the corrected file is saved", saved and os.path.exists(saved["path"]), repr(saved))
        v = subprocess.run([cli, "validate", saved["path"]], capture_output=True, text=True)
        check("metasync validate accepts the saved file", v.returncode == 0, v.stdout + v.stderr)
        with open(broken, "rb") as f:
            original = f.read()
        check("the original file is untouched", b"Bad Slug" in original)

        # An export with headers of its own: the mapping editor opens by itself.
        export_head = "Show ID,Slug,Program Title,Audience,Station,Language,Notes\r\n"
        rows = "SH{i}1,nova-{i},NOVA,national,,en,ok\r\nSH{i}2,frontline-{i},Frontline,national,,en,\r\n"
        exports = [os.path.join(tmp, n) for n in ("export.csv", "export-again.csv")]
        for i, e in enumerate(exports):
            with open(e, "w", newline="") as f:
                # Other keys and slugs in the second: both files are open together,
                # and a key or slug in two files is a duplicate.
                f.write(export_head + rows.format(i=i))
        open_files([exports[0]])
        tab = wait_for("the export's tab", lambda: [t for t in find_all(".tab") if text(t).startswith("export.csv")])
        click(tab[0])
        wait_for("the mapping editor", lambda: find_all("[role=dialog]"))
        missing = text(find("[data-testid=missing-required]"))
        check("the editor shows the required column not mapped", "show_key" in missing, repr(missing))
        title_choice = run("return document.querySelector(\"select[aria-label='Map Program Title']\").value")
        check("the likeliest field is suggested first and chosen", title_choice == "title", repr(title_choice))
        screenshot("7-mapping")
        select("Map Show ID", "show_key")
        wait_for("nothing required left", lambda: not find_all("[data-testid=missing-required]"))
        click(find(".mapping .fix-actions button"))
        n = wait_for("the mapped file validated", lambda: not find_all("[role=dialog]") and error_count() == 0 and "0")
        check("with the mapping the export validates clean", n == "0", repr(n))
        note = text(find(".mapping-note"))
        check("the file says its profile maps it", "saved profile" in note, repr(note))
        profiles = glob.glob(os.path.join(config, "metasync", "mappings", "*.toml"))
        check("the profile is saved", len(profiles) == 1, repr(profiles))
        v = subprocess.run([cli, "validate", "--mapping", profiles[0], exports[0]], capture_output=True, text=True)
        check("metasync validate --mapping reads the saved profile", v.returncode == 0, v.stdout + v.stderr)
        # The same headers again: mapped at once, no editor.
        opened = open_files([exports[1]])
        check("the same export opens with its profile", opened[0] and opened[0]["mapping_profile"] == profiles[0], repr(opened))
        tab = wait_for("the second export's tab", lambda: [t for t in find_all(".tab") if text(t).startswith("export-again.csv")])
        click(tab[0])
        n = wait_for("the second export validated", lambda: error_count() == 0 and "0")
        check("the second export validates clean without the editor", n == "0" and not find_all("[role=dialog]"))

        # Settings: a production profile made in the form (a refused value first, in
        # the CLI's words), its target credentials into the keychain, a connection test
        # against the sandbox, the CLI using what the window wrote, the header in red.
        press("header button[data-screen=settings]", "the settings screen", lambda: find_all("[role=dialog][aria-label=Settings]"))
        click(wait_for("New profile", lambda: [b for b in find_all(".settings-list button") if text(b) == "New profile"])[0])
        wait_for("the new profile's form", lambda: find_all("input[data-field=name]"))
        fill("input[data-field=name]", "desk")
        fill("input[data-field=data_dir]", demo_data)  # the demo's synced catalog
        click(find("input[aria-label=Production]"))
        fill("input[data-field='target.url']", sandbox_url + "/api/v1")
        fill("input[data-field='target.quota']", "-5")
        shown = text(press(".settings-main button.primary", "the refusal", lambda: find_all("[data-testid=settings-error]"))[0])
        with open(os.path.join(tmp, "refused.toml"), "w") as f:
            f.write(f'[profiles.desk]\nproduction = true\n[profiles.desk.target]\ndialect = "media_manager"\n'
                    f'url = "{sandbox_url}/api/v1"\nquota = -5\n')
        cli_says = subprocess.run([cli, "target", "check", "--profile", "desk", "--config", os.path.join(tmp, "refused.toml")],
                                  capture_output=True, text=True, env=app_env)
        said = cli_says.stderr.strip().split("profile desk: ", 1)[-1]
        check("a refused quota is shown in the CLI's words, at its field",
              said and shown.endswith(said) and find_all("label.bad input[data-field='target.quota']")
              and not os.path.exists(config_file), f"{shown!r} vs {cli_says.stderr!r}")
        fill("input[data-field='target.quota']", "50")
        press(".settings-main button.primary", "the saved profile",
              lambda: find_all(".settings-list [data-profile=desk]") and find_all("[data-testid=credentials-target]"))
        v = subprocess.run([cli, "infra", "check", "--profile", "desk"], capture_output=True, text=True, env=app_env, cwd=tmp)
        check("the CLI finds the profile the window wrote (no --config)",
              v.returncode == 0 and "profile desk [PRODUCTION]" in v.stdout and os.path.exists(config_file), v.stdout + v.stderr)
        state = text(find("[data-testid=credentials-target]"))
        check("the target's credentials start as not set", state == "not set", repr(state))
        click(find(".credential[data-kind=target] button"))
        fill("input[aria-label=Key]", "sandbox-key")
        fill("input[aria-label=Secret]", SANDBOX_SECRET)
        holds = "return [...document.querySelectorAll('input')].some(i => i.value === arguments[0])"
        typed = run(holds, SANDBOX_SECRET)
        state = press(".secret-form button[type=submit]", "credentials set",
                      lambda: text(find("[data-testid=credentials-target]")) == "set" and "set")
        kept = run(holds, SANDBOX_SECRET) or SANDBOX_SECRET in run("return document.documentElement.outerHTML")
        check("stored: the screen says set, and the typed secret is gone from it", typed and state == "set" and not kept)
        stored = subprocess.run(["secret-tool", "lookup", "service", "metasync", "username", "desk/target-secret"],
                                capture_output=True, text=True, env=app_env)
        check("the secret is in the OS keychain", stored.stdout.strip() == SANDBOX_SECRET, stored.stderr)
        click(find(".connection button"))
        report = wait_for("the connection report", lambda: find_all("[data-testid=connection-report] li[data-ok]"), seconds=60)
        lines = [(text(li), run("return arguments[0].dataset.ok", {ELEMENT: li})) for li in report]
        check("test connection: the sandbox accepts the credentials and the folder is fine",
              "credentials were accepted" in lines[0][0] and all(ok == "true" for _, ok in lines), repr(lines))
        v = subprocess.run([cli, "target", "check", "--profile", "desk"], capture_output=True, text=True, env=app_env, cwd=tmp)
        check("metasync target check uses the window's profile and keychain entry", v.returncode == 0, v.stdout + v.stderr)
        select("Profile", "desk")
        red = wait_for("the production header", lambda: run("const h = document.querySelector('header');"
                       "return h.classList.contains('production') && getComputedStyle(h).backgroundColor"))
        check("a production profile turns the header red, with its badge",
              red == "rgb(142, 27, 27)" and text(find("[data-testid=production]")) == "PRODUCTION", repr(red))
        screenshot("8-settings")
        press("header button[data-screen=settings]", "settings closed", lambda: not find_all("[role=dialog][aria-label=Settings]"))

        # The plan, on that profile (the demo's synced catalog): a show retitled in the
        # window is the one changed record, with its diff; nothing is sent.
        # Only the demo's shows and an episode of a season nobody has (demo and generated
        # files share keys): close the rest.
        close_all()
        before = open(demo_shows, "rb").read()
        orphans = os.path.join(tmp, "orphans.csv")
        with open(os.path.join(tmp, "demo", "catalog", "episodes.csv"), newline="", encoding="utf-8") as f:
            ep = list(csv.reader(f))
        row = dict(zip(ep[0], ep[2]), episode_key="SH999999-S01-E01", season_key="SH999999-S01", slug="orphan-episode")
        with open(orphans, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([ep[0], [row[c] for c in ep[0]]])
        shows_id = open_files([demo_shows, orphans])[0]["id"]
        wait_for("the files validated", lambda: all(f["indexed"] and not f["checking"] for f in invoke("workbench_files", {})))
        invoke("workbench_edit", {"id": shows_id, "row": 0, "column": demo_title_col, "value": NEW_TITLE})
        # desk's Media Manager key is a station's: a show it may not change is planned as
        # "not writable", with its diff (a PBS key would make it "changed").
        press("header button[data-screen=plan]", "the plan screen", lambda: find_all("[role=dialog][aria-label=Plan]"))
        def plan_read():
            # One read of a settled plan (a finished validation pass plans again).
            if not find_all("[data-count=not_writable]") or "Planning" in text(find(".plan-head")):
                return None
            record = find(f"[data-record='show#{demo_show_key}'] tr[data-field=title]")
            blocked = [text(li) for li in find_all(".plan-record.blocked")]
            # A plan made while the edit's pass was still running can come before the
            # settled one: wait for the one that lists the blocked episode.
            return blocked and (text(find("[data-count=not_writable]")), text(record),
                                text(find("[data-count=unchanged]")), blocked)
        changed, diff, unchanged, blocked = wait_for("the plan", plan_read)
        check("the plan shows the retitled show, not writable with a station's key, old → new",
              changed.startswith("1 ") and unchanged.startswith(f"{len(demo_shows_rows) - 1} ")
              and demo_old_title in diff and NEW_TITLE in diff, f"{changed!r} {unchanged!r} {diff!r}")
        check("a blocked episode says the season it waits for",
              len(blocked) == 1 and "waits for season#SH999999-S01" in blocked[0], repr(blocked))
        screenshot("9-plan")
        press("header button[data-screen=plan]", "plan closed", lambda: not find_all("[role=dialog][aria-label=Plan]"))
        check("the plan left the open file as it was", open(demo_shows, "rb").read() == before)

        # The operations room on a local profile against the sandbox: plan with a
        # diff, sync with progress, the queues drained on the dashboard (as `metasync
        # status` says), triage: the refused episode edited and retried until synced.
        ops_files = ops_catalog(tmp)
        with open(config_file, "a") as f:
            f.write(f'\n[profiles.ops]\ndata_dir = "{os.path.join(tmp, "ops-data")}"\n[profiles.ops.target]\n'
                    f'dialect = "media_manager"\naccess = "pbs"\nurl = "{ops_url}/api/v1"\nbase_delay_seconds = 0.05\n')
        subprocess.run([cli, "credentials", "set", "--profile", "ops", "--from-stdin"], input=f"sandbox-key\n{SANDBOX_SECRET}\n",
                       text=True, env=app_env, cwd=tmp, check=True, capture_output=True)
        first = subprocess.run([cli, "sync", "--profile", "ops", ops_files[0], "--format", "json"],
                               capture_output=True, text=True, env=app_env, cwd=tmp)
        check("the shows are synced once from the CLI", first.returncode == 0, first.stdout + first.stderr)
        close_all()
        ops_shows = open_files(ops_files)[0]["id"]
        wait_for("the catalog validated", lambda: all(f["indexed"] and not f["checking"] for f in invoke("workbench_files", {})))
        invoke("workbench_edit", {"id": ops_shows, "row": 1, "column": 2, "value": "Ops Frontline Weekly"})
        press("header button[data-screen=plan]", "the plan screen", lambda: find_all("[role=dialog][aria-label=Plan]"))
        # The profile was added to the file behind the window's back: the switcher
        # reads the list again when it gets the focus, as when staff open it.
        until("the ops profile in the switcher", lambda _: run("document.querySelector('select[aria-label=Profile]').focus()"),
              lambda: find_all("select[aria-label=Profile] option[value=ops]"), seconds=10)
        select("Profile", "ops")
        def ops_plan():
            head = text(find(".plan-head"))
            if "ops" not in head or "Planning" in head or not find_all("[data-count=new]"):
                return None
            return ({k: text(find(f"[data-count={k}]")).split()[0] for k in ("new", "changed", "unchanged")},
                    text(find("[data-record='show#OPS2'] tr[data-field=title]")))
        counts, diff = wait_for("the plan for ops", ops_plan)
        check("the plan counts 5 new, 1 changed, 1 unchanged, with the title's diff",
              counts == {"new": "5", "changed": "1", "unchanged": "1"} and "Ops Frontline" in diff and "Weekly" in diff,
              f"{counts!r} {diff!r}")
        screenshot("10-plan-before-sync")
        click(find("button[data-action=sync]"), idempotent=False)
        # Closing while it runs asks first; "Keep syncing" keeps the window and the sync.
        wait_for("the sync running", lambda: find_all("button[data-action=cancel-sync]"))
        asked = invoke("test_request_close", {}) and wait_for(
            "the close question", lambda: find_all("[role=alertdialog][aria-label='Close during a sync']"))
        press("[role=alertdialog] button[data-action=keep-syncing]", "the question gone",
              lambda: not find_all("[role=alertdialog]"))
        check("closing during a sync asks first, and keeping it keeps the window", bool(asked))
        done = wait_for("the sync's end", lambda: find_all("[data-testid=sync-done]"), seconds=120)[0]
        got = (run("return arguments[0].dataset.synced", {ELEMENT: done}), run("return arguments[0].dataset.failed", {ELEMENT: done}))
        rows = {t: text(find(f".sync-types tr[data-type={t}] td[data-col=synced]")) for t in ("show", "season", "episode")}
        check("the sync ends with 5 synced (a changed show, 2 seasons, 2 episodes) and the refused episode failed",
              got == ("5", "1") and rows == {"show": "1", "season": "2", "episode": "2"}, f"{got!r} {rows!r}")
        screenshot("11-sync")

        press("header button[data-screen=dashboard]", "the dashboard", lambda: find_all("[data-testid=queues] tr[data-type]"))
        status = json.loads(subprocess.run([cli, "status", "--profile", "ops", "--format", "json"], capture_output=True,
                                           text=True, env=app_env, cwd=tmp, check=True).stdout)
        def shown_queues():
            # Read after the CLI, once the page has read the queues again.
            return {row["type"]: [int(text(find(f"[data-testid=queues] tr[data-type={row['type']}] td[data-col={c}]")))
                                  for c in ("visible", "in_flight", "dead")] for row in status["queues"]}
        cli_queues = {q["type"]: [q["visible"], q["in_flight"], q["dead"]] for q in status["queues"]}
        shown = wait_for("the dashboard's queues", lambda: shown_queues() == cli_queues and shown_queues())
        failures = text(find("[data-card=failures]"))
        check("the dashboard shows the queues drained, as metasync status says",
              all(v == [0, 0, 0] for v in shown.values()) and status["failures"] == {"http_400": 1}
              and failures.startswith("1 in triage") and "http_400 1" in failures, f"{shown!r} {status!r} {failures!r}")
        synced_ep = text(find("[data-testid=queues] tr[data-type=episode] td[data-col=synced_per_minute]"))
        p50_ep = text(find("[data-testid=queues] tr[data-type=episode] td[data-col=p50]"))
        check("throughput and latency per type: 2 episodes synced, their p50",
              synced_ep == "2" and p50_ep.endswith(" ms"), f"{synced_ep!r} {p50_ep!r}")
        points = wait_for("the depth charts", lambda: int(run("return document.querySelector('[data-chart=episode]').dataset.points")))
        check("the depth chart has samples from the sync", points >= 2, repr(points))
        screenshot("12-dashboard")

        badge = text(find("[data-testid=triage-badge]"))
        press("header button[data-screen=triage]", "triage", lambda: find_all("[role=dialog][aria-label=Triage]"))
        refused = "episode#OPS1-S1-E2"
        group = wait_for("the http_400 group", lambda: find_all(".group[data-code=http_400]"))[0]
        check("triage groups the refusal with the target's answer, badge 1",
              badge == "1" and REFUSED in text(group) and refused in text(group), f"{badge!r} {text(group)!r}")
        press(f"button[data-record='{refused}']", "the failure's panel", lambda: find_all("[data-testid=failure-detail]"))
        answer = text(find("[data-testid=target-answer]"))
        fill("input[data-field=slug]", "Not A Slug")
        flagged = wait_for("the slug flagged as typed", lambda: find_all("label.bad input[data-field=slug]"))
        disabled = run("return document.querySelector('button[data-action=retry]').disabled")
        check("an edit is checked as it is typed: a bad slug is flagged and retry waits",
              flagged and disabled and REFUSED in answer, f"{disabled!r} {answer!r}")
        fill("input[data-field=slug]", "bats")
        fill("input[data-field=title]", "Bats")
        wait_for("the edit accepted", lambda: not find_all("label.bad") and not run(
            "return document.querySelector('button[data-action=retry]').disabled"))
        screenshot("13-triage")
        click(find("button[data-action=retry]"), idempotent=False)
        wait_for("the fixed failure gone from the list", lambda: find_all("[data-testid=no-failures]"), seconds=60)
        check("the fixed failure leaves the list and the badge by itself", not find_all("[data-testid=triage-badge]")
              or wait_for("the badge gone", lambda: not find_all("[data-testid=triage-badge]"), seconds=10))
        status = json.loads(subprocess.run([cli, "status", "--profile", "ops", "--format", "json"], capture_output=True,
                                           text=True, env=app_env, cwd=tmp, check=True).stdout)
        # The record's state, read from the embedded store's own table.
        with sqlite3.connect(os.path.join(tmp, "ops-data", "metasync.db")) as db:
            record_status = db.execute("SELECT status FROM records WHERE id = ?", (refused,)).fetchone()[0]
        check("metasync status agrees: no failure left, queues empty, the episode synced",
              status["failures"] == {} and all(q["visible"] + q["in_flight"] + q["dead"] == 0 for q in status["queues"])
              and record_status == "synced", f"{status!r} {record_status!r}")
        triage_run = status["runs"][0]
        check("the retry is in the run history with who and the edit",
              triage_run["kind"] == "triage" and triage_run["note"] == "retry with title=Bats"
              and triage_run["who"], repr(triage_run))
        press("header button[data-screen=runs]", "the runs", lambda: find_all(".runs-table tr[data-kind=triage]"))
        check("the runs screen lists the sync and the triage action",
              len(find_all(".runs-table tr[data-kind=sync]")) >= 2 and "retry with title=Bats" in text(find(".runs-table tr[data-kind=triage]")))
        sync_run = [r for r in status["runs"] if r["kind"] == "sync"][0]["id"]
        press(f".runs-table tr[data-run='{sync_run}'] button.link", "the run's records", lambda: find_all("[data-testid=run-detail] [data-outcome]"))
        outcomes = {run("return arguments[0].dataset.outcome", {ELEMENT: b}): text(b).split()[0]
                    for b in find_all("[data-testid=run-detail] [data-outcome]")}
        check("the sync run opens to its records: 5 synced, and the fixed episode changed since",
              outcomes == {"synced": "5", "changed since": "1", "unchanged": "1"}, repr(outcomes))
        screenshot("14-runs")
        click(find("button[data-action=export-run]"), idempotent=False)
        exported = os.path.join(saves, f"run-{sync_run}.csv")
        wait_for("the exported run", lambda: os.path.exists(exported) and os.path.getsize(exported) > 0)
        with open(exported, newline="", encoding="utf-8") as f:
            exported_rows = list(csv.reader(f))
        check("the run's records export as CSV, one line per record",
              exported_rows[0][:2] == ["record", "outcome"] and len(exported_rows) == 8
              and ["episode#OPS1-S1-E2", "changed since"] in [r[:2] for r in exported_rows], repr(exported_rows[:3]))

        # The live log: the sync's lines, found by its run.
        press("header button[data-screen=logs]", "the logs", lambda: find_all("[data-testid=log-lines] .log-line"))
        select("Run", sync_run)
        logged = wait_for("the sync's lines", lambda: [text(l) for l in find_all(f".log-line[data-run='{sync_run}']")])
        check("the logs screen tails the log: the sync's plan, enqueue and summary lines",
              any("planned" in l for l in logged) and any("run finished" in l for l in logged), repr(logged[:4]))
        screenshot("15-logs")
        press("header button[data-screen=logs]", "logs closed", lambda: not find_all("[role=dialog][aria-label=Logs]"))
        # The 1M-row episodes must not be checked against this catalog's seasons.
        close_all()
        if os.environ.get("METASYNC_WINDOW_BENCH"):
            bench_sync(tmp, cli, app_env, config_file, SimpleNamespace(**{f.__name__: f for f in (
                open_files, close_all, press, select, until, find, find_all, text, run, run_async, invoke, click,
                wait_for)}))
        select("Profile", "")
        wait_for("the plain header", lambda: run("return !document.querySelector('header').classList.contains('production')"))

        # A million rows: open, wait, jump to row 900,000 and read its key.
        started = time.monotonic()
        open_files([big])
        tab = wait_for("the new tab", lambda: [t for t in find_all(".tab") if "episodes-1m" in text(t)])
        click(tab[0])
        first = wait_for("the first rows", lambda: len(find_all(".grid-row")) > 0 and time.monotonic() - started)
        print(f"     first rows of the 1M-row file visible after {first:.2f} s", flush=True)
        wait_for("validation of 1M rows", lambda: error_count() is not None, seconds=240)
        print(f"     1M rows validated after {time.monotonic() - started:.2f} s", flush=True)
        row_there = "return !!document.querySelector(\".grid-row[data-row='899999']\")"
        type_and_wait("input[aria-label='Go to row']", "900000\ue007", "the jump", lambda: run(row_there))
        # Read as staff see it: the cell's text, and that it lies inside the grid's viewport.
        probe = """const c = document.querySelector(".grid-row[data-row='899999'] .cell[data-col='0']");
            if (!c) return null;
            const g = document.querySelector('.grid').getBoundingClientRect(), r = c.getBoundingClientRect();
            return {text: c.textContent, inside: r.top >= g.top && r.bottom <= g.bottom};"""
        seen = wait_for("row 900,000", lambda: run(probe))
        check("row 900,000 shows its key from the file", seen["text"] == big_key, f"{seen!r} != {big_key!r}")
        check("row 900,000 is inside the grid's viewport", seen["inside"], repr(seen))
        screenshot("6-million-rows")
        mem = memory_of(app)
        if mem:
            pss, rss, parts = mem
            print(f"     memory with the 1M-row file open, all processes: PSS {pss:.0f} MiB "
                  f"(RSS summed {rss:.0f} MiB: shared libraries counted once per process); "
                  + ", ".join(f"{n} {p:.0f}" for n, p in parts), flush=True)
    except (OSError, AssertionError, subprocess.CalledProcessError) as e:
        print(f"FAIL the window test broke off: {e!r}")
        failed += 1
        if session:
            try:  # what the window showed when it broke off
                png = base64.b64decode(wd.call("GET", f"/session/{session}/screenshot", timeout=30))
                with open(os.path.join(shots, "failure.png"), "wb") as f:
                    f.write(png)
                print(f"     the window at that moment: {os.path.join(shots, 'failure.png')}")
            except (OSError, AssertionError):
                pass
    finally:
        if session:
            try:
                wd.call("DELETE", f"/session/{session}", timeout=20, reads=False)
            except (OSError, AssertionError) as e:
                print(f"closing the session: {e}", file=sys.stderr)
        sandbox.terminate()
        sandbox_log.close()
        ops_sandbox.terminate()
        ops_log.close()
        driver.terminate()
        try:
            driver.wait(timeout=10)
        except subprocess.TimeoutExpired:
            driver.kill()
        if failed or not passed:
            driver_log.seek(0)
            sys.stderr.write(driver_log.read().decode(errors="replace")[-4000:])
        driver_log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if passed and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
