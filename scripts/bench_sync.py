#!/usr/bin/env python3
"""Benchmark of `metasync sync` (release build) against `metasync sandbox`, on the
embedded backend, and of the memory a 1,000,000-record plan takes.

Goals (the pipeline issue):
- throughput: sandbox quota Q = 200/s with 20 ms latency, 20,000 records: wall time
  <= 1.05 x records / Q + 10 s with 0 x 429; the same on a skewed catalog where one
  show holds 80% of the records;
- target requests per needed call <= 1.05 on a fault-free run (a call per written
  record, plus the PATCH of the edit endpoint that sends an asset's video and caption
  sources: Media Manager takes files there);
- per record, from the run summary's counters: queue sends <= 1.05 / (10 x batch
  size), state reads <= 0.02, state writes <= 1.2, receives <= 1.1 / (10 x batch size);
- a 1,000,000-record plan in <= 300 MiB peak RSS.

Prints a table and exits 1 if a goal is missed. `--quick` runs 2,000 records and a
100,000-record plan (to try the script, not to measure)."""
import csv, json, os, shutil, socket, subprocess, sys, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "metasync")
OUT = os.path.join(ROOT, "bench-out", "sync")
QUOTA = 200
LATENCY_MS = 20
BATCH = 10
ENV = dict(os.environ, METASYNC_TARGET_KEY="sandbox-key", METASYNC_TARGET_SECRET="sandbox-secret",
           DBUS_SESSION_BUS_ADDRESS="disabled:")


def main():
    quick = "--quick" in sys.argv
    records, plan_records = (2_000, 100_000) if quick else (20_000, 1_000_000)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "metasync-cli"], cwd=ROOT, check=True)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    per_show = rows_per_show()
    ok = True
    rows = []
    for name, skew in [("uniform", False), ("skewed 80% in one show", True)]:
        cat = catalog(os.path.join(OUT, name.split()[0]), round(records / per_show), seed=5)
        if skew:
            skew_catalog(cat, 0.8)
        r = sync_run(cat, os.path.join(OUT, name.split()[0] + "-data"), again=not skew)
        r["name"] = name
        rows.append(r)
    print(f"sandbox quota {QUOTA}/s, latency {LATENCY_MS} ms, batch size {BATCH}, local backend\n")
    print(f"{'catalog':<24}{'written':>8}{'wall s':>8}{'bound s':>8}{'429s':>6}{'req/rec':>8}"
          f"{'sends':>8}{'reads':>8}{'writes':>8}{'recvs':>8}{'dups':>6}")
    for r in rows:
        n = r["written"]
        bound = 1.05 * (n + r["media"]) / QUOTA + 10
        c = r["per_record"]
        print(f"{r['name']:<24}{n:>8,}{r['wall']:>8.1f}{bound:>8.1f}{r['throttled']:>6}{c['requests']:>8.3f}"
              f"{c['sends']:>8.4f}{c['reads']:>8.4f}{c['writes']:>8.3f}{c['receives']:>8.4f}{r['duplicates']:>6}")
        checks = {
            "wall time": r["wall"] <= bound,
            "no 429": r["throttled"] == 0,
            "requests per needed call": c["requests"] <= 1.05,
            "sends per record": c["sends"] <= 1.05 / (10 * BATCH),
            "state reads per record": c["reads"] <= 0.02,
            "state writes per record": c["writes"] <= 1.2,
            "receives per record": c["receives"] <= 1.1 / (10 * BATCH),
            "no duplicates": r["duplicates"] == 0,
            "every row synced": r["summary"]["synced"] == r["summary"]["rows"],
        }
        for what, good in checks.items():
            if not good:
                ok = False
                print(f"  MISSED: {what}")
    print("\ncounters of the uniform run:", json.dumps(rows[0]["summary"]["api_calls"]))
    again = rows[0]["again"]
    calls = again["summary"]["api_calls"]
    n = again["summary"]["rows"]
    reads = sum(calls.get(k, 0) for k in ("state.GetItem", "state.BatchGetItem", "state.Query"))
    print(f"re-sync of the same files: {again['summary']['unchanged']:,} of {n:,} rows unchanged in "
          f"{again['wall']:.1f} s, {calls['target.requests']} target requests, "
          f"{reads / n:.4f} state reads per row (the plan's batch reads)")
    if calls["target.requests"] != 0:
        ok = False
        print("  MISSED: a re-sync must make no target request")

    cat = catalog(os.path.join(OUT, "plan"), round(plan_records / per_show), seed=9)
    total = sum(count_rows(os.path.join(cat, f"{t}.csv")) for t in TYPES)
    data = os.path.join(OUT, "plan-data")
    config = write_config(data, "http://127.0.0.1:9/api/v1")
    t0 = time.perf_counter()
    argv = [BIN, "plan", "--profile", "b", "--config", config, "--format", "json", "--max-records", "100",
            *[os.path.join(cat, f"{t}.csv") for t in TYPES]]
    out, rss_kib = spawn_measured(argv)
    wall = time.perf_counter() - t0
    plan = json.loads(out)
    mib = rss_kib / 1024
    print(f"\nplan of {total:,} records ({plan['new']:,} new): {wall:.1f} s, peak RSS {mib:.1f} MiB (goal <= 300)")
    if mib > 300 or plan["new"] + plan["rejected"] + plan["blocked"] != total:
        ok = False
        print("  MISSED: plan memory or counts")
    print("goals met" if ok else "GOALS MISSED")
    return 0 if ok else 1


TYPES = ["shows", "seasons", "episodes", "assets"]


def media_assets(cat):
    """Assets with a video or caption source: each takes one more call (the edit endpoint)."""
    with open(os.path.join(cat, "assets.csv"), newline="", encoding="utf-8") as f:
        return sum(1 for row in csv.DictReader(f) if row.get("video_source") or row.get("caption_source"))


def rows_per_show():
    cat = catalog(os.path.join(OUT, "probe"), 200, seed=5)
    return sum(count_rows(os.path.join(cat, f"{t}.csv")) for t in TYPES) / 200


def catalog(path, shows, seed):
    subprocess.run([BIN, "gen", "--catalog", "--shows", str(shows), "--seed", str(seed), "--out", path],
                   check=True, stderr=subprocess.DEVNULL)
    return path


def count_rows(path):
    with open(path, newline="", encoding="utf-8-sig") as f:
        return sum(1 for _ in csv.reader(f)) - 1


def read(path):
    with open(path, newline="", encoding="utf-8-sig") as f:
        r = csv.reader(f)
        header = next(r)
        return header, list(r)


def write(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def skew_catalog(cat, share):
    """Move `share` of all episodes (their assets follow) under the first show's
    seasons, renumbering ordinals so they stay unique per season."""
    sh, seasons = read(os.path.join(cat, "seasons.csv"))
    show_key = next(r[sh.index("show_key")] for r in seasons)
    targets = [r[sh.index("season_key")] for r in seasons if r[sh.index("show_key")] == show_key]
    eh, episodes = read(os.path.join(cat, "episodes.csv"))
    si, oi = eh.index("season_key"), eh.index("ordinal")
    next_ordinal = {s: 0 for s in targets}
    for r in episodes:
        if r[si] in next_ordinal:
            next_ordinal[r[si]] = max(next_ordinal[r[si]], int(r[oi]))
    step = 1 / share
    i = 0.0
    moved = 0
    for n, r in enumerate(episodes):
        if n < i or r[si] in next_ordinal:
            continue
        i += step
        s = targets[moved % len(targets)]
        next_ordinal[s] += 1
        r[si], r[oi] = s, str(next_ordinal[s])
        moved += 1
    write(os.path.join(cat, "episodes.csv"), eh, episodes)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(data, url):
    os.makedirs(data, exist_ok=True)
    path = os.path.join(data, "metasync.toml")
    with open(path, "w") as f:
        f.write(f'[profiles.b]\ndata_dir = "{data}"\n[profiles.b.target]\ndialect = "media_manager"\naccess = "pbs"\n'
                f'url = "{url}"\nquota = {QUOTA}\n')
    return path


def sync_run(cat, data, again=False):
    port = free_port()
    # A PBS key: the benchmark creates its shows.
    sandbox = subprocess.Popen([BIN, "sandbox", "--port", str(port), "--quota", str(QUOTA),
                                "--latency-ms", str(LATENCY_MS), "--access", "pbs"],
                               stdout=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/_sandbox/stats", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        config = write_config(data, url + "/api/v1")
        argv = [BIN, "sync", "--profile", "b", "--config", config, "--format", "json",
                "--batch-size", str(BATCH), *[os.path.join(cat, f"{t}.csv") for t in TYPES]]
        t0 = time.perf_counter()
        summary = run_sync(argv)
        wall = time.perf_counter() - t0
        stats = json.loads(urllib.request.urlopen(url + "/_sandbox/stats", timeout=5).read())
        second = None
        if again:
            t0 = time.perf_counter()
            second = {"summary": run_sync(argv)}
            second["wall"] = time.perf_counter() - t0
    finally:
        sandbox.terminate()
        sandbox.wait()
    calls = summary["api_calls"]
    written = summary["created"] + summary["updated"]
    media = media_assets(cat)
    c = lambda *names: sum(calls.get(n, 0) for n in names)
    per = {
        "requests": calls["target.requests"] / (written + media),
        "sends": c("queue.SendMessageBatch", "queue.SendMessage") / written,
        "reads": c("state.GetItem", "state.BatchGetItem", "state.Query") / written,
        "writes": c("state.PutItem", "state.BatchWriteItem", "state.UpdateItem") / written,
        "receives": c("queue.ReceiveMessage") / written,
    }
    return {"written": written, "media": media, "wall": wall, "throttled": stats["throttled"],
            "duplicates": stats["duplicates"], "per_record": per, "summary": summary, "again": second}


def run_sync(argv):
    p = subprocess.run(argv, env=ENV, capture_output=True, text=True)
    if p.returncode > 1:
        sys.exit(f"sync failed: {p.stderr}")
    return json.loads(p.stdout)


def spawn_measured(argv):
    """Run argv with stdout to a file; return (stdout, its own peak RSS in KiB)."""
    out_path = os.path.join(OUT, "last-report.json")
    actions = [(os.POSIX_SPAWN_OPEN, 1, out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)]
    pid = os.posix_spawn(argv[0], argv, ENV, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) > 1:
        sys.exit(f"{argv[:2]} failed")
    with open(out_path) as f:
        return f.read(), usage.ru_maxrss


if __name__ == "__main__":
    sys.exit(main())
