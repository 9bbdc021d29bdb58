#!/usr/bin/env python3
"""Benchmark of `metasync validate` (release build) on generated episode files.

Goals (issue 2): >= 1,000,000 rows/s on the 1M-row file, peak RSS <= 200 MiB, and
memory that grows with the keys kept, not the file's bytes. Prints one line per size
and the best of three runs; exits 1 if a goal is missed."""
import json, os, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "metasync")
OUT = os.path.join(ROOT, "bench-out")
SIZES = [250_000, 500_000, 1_000_000]
RUNS = 3


def main():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "metasync-cli"], cwd=ROOT, check=True)
    os.makedirs(OUT, exist_ok=True)
    results = []
    for rows in SIZES:
        path = os.path.join(OUT, f"episodes-{rows}.csv")
        if not os.path.exists(path):
            subprocess.run([BIN, "gen", "--type", "episode", "--rows", str(rows), "--seed", "42",
                            "--out", path], check=True, stderr=subprocess.DEVNULL)
        size = os.path.getsize(path)
        best_wall, best_rss = None, None
        for _ in range(RUNS):
            wall, rss_kib, out = spawn_measured([BIN, "validate", "--format", "json", path])
            report = json.loads(out)
            assert report["rows"] == rows and report["invalid"] == 0, report
            best_wall = wall if best_wall is None else min(best_wall, wall)
            best_rss = rss_kib if best_rss is None else max(best_rss, rss_kib)
        rate = rows / best_wall
        results.append((rows, size, best_wall, rate, best_rss))
        print(f"{rows:>9,} rows  {size / 2**20:7.1f} MiB  {best_wall:6.3f} s  "
              f"{rate:>11,.0f} rows/s  {size / 2**20 / best_wall:6.0f} MiB/s  peak RSS {best_rss / 1024:6.1f} MiB")
    rows, size, wall, rate, rss = results[-1]
    small = results[0]
    per_row = (rss - small[4]) * 1024 / (rows - small[0])
    per_row_file = size / rows
    print(f"memory growth: {per_row:.0f} bytes per extra row (the file has {per_row_file:.0f} bytes per row)")
    ok = rate >= 1_000_000 and rss <= 200 * 1024 and per_row < per_row_file / 2
    print("goals met" if ok else "GOALS MISSED")
    return 0 if ok else 1


def spawn_measured(argv):
    """Run argv with stdout to a file; return (wall seconds, its own peak RSS in KiB, stdout)."""
    out_path = os.path.join(OUT, "last-report.json")
    actions = [(os.POSIX_SPAWN_OPEN, 1, out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)]
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{argv} failed")
    with open(out_path) as f:
        return wall, usage.ru_maxrss, f.read()


if __name__ == "__main__":
    sys.exit(main())
