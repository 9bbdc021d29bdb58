import { describe, expect, it } from "vitest";
import type { DashboardView, FailureView, LogLine, RunView, SyncUpdate } from "./backend";
import {
  confirmed,
  depthSeries,
  editsOf,
  filterLogs,
  failureCount,
  formatSeconds,
  minuteTotals,
  problemsByField,
  progressRows,
  runCounts,
  runsIn,
} from "./ops";

const update = (types: Partial<SyncUpdate["types"][number]>[]): SyncUpdate => ({
  stage: "working",
  profile: "profile desk",
  types: types.map((t, i) => ({ entity: ["show", "season", "episode", "asset"][i], enqueued: 0, synced: 0, unchanged: 0, failed: 0, ...t })),
  resolved: 0,
  total: 0,
  throttled: 0,
  rate_per_second: 0,
  eta_seconds: null,
  elapsed_ms: 0,
  cancelling: false,
});

const dash = (over: Partial<DashboardView> = {}): DashboardView => ({
  profile: "profile desk",
  production: false,
  at_ms: 0,
  queues: [],
  failures: {},
  depth: [],
  minutes: [],
  latency_p50_ms: null,
  latency_p95_ms: null,
  runs: [],
  alert: null,
  interrupted: null,
  per_type: [],
  ...over,
});

describe("the sync panel", () => {
  it("shows types with work, resolved out of sent", () => {
    const rows = progressRows(update([{ enqueued: 4, synced: 2, failed: 1 }, {}, { unchanged: 9 }]));
    expect(rows.map((r) => [r.entity, r.percent])).toEqual([
      ["show", 75],
      ["episode", 100],
    ]);
  });

  it("says times as staff read them", () => {
    expect(formatSeconds(null)).toBe("—");
    expect(formatSeconds(12.4)).toBe("12 s");
    expect(formatSeconds(65)).toBe("1 min 05 s");
    expect(formatSeconds(3 * 3600 + 120)).toBe("3 h 02 min");
  });

  it("syncs to production only with the profile's name typed", () => {
    expect(confirmed(false, "staging", "")).toBe(true);
    expect(confirmed(true, "prod", "pro")).toBe(false);
    expect(confirmed(true, "prod", " prod ")).toBe(true);
    expect(confirmed(true, null, "")).toBe(false);
  });
});

describe("the dashboard", () => {
  it("charts one type's depth over time, in seconds", () => {
    const d = dash({
      depth: [
        { t: 1000, depth: [[1, 2, 3], [0, 0, 0], [7, 1, 0], [0, 0, 0]] },
        { t: 6000, depth: [[0, 0, 3], [0, 0, 0], [2, 0, 1], [0, 0, 0]] },
      ],
    });
    expect(depthSeries(d, "episode")).toEqual([[1, 6], [7, 2], [1, 0], [0, 1]]);
  });

  it("adds up throughput and the failures badge", () => {
    const d = dash({
      minutes: [
        { t: 0, synced: 10, failed: 0, throttled: 2 },
        { t: 60000, synced: 5, failed: 1, throttled: 0 },
      ],
      failures: { http_400: 2, retries_exhausted: 1 },
    });
    expect(minuteTotals(d)).toEqual({ synced: 15, throttled: 2, lastMinute: d.minutes[1] });
    expect(failureCount(d)).toBe(3);
    expect(failureCount(undefined)).toBe(0);
  });
});

describe("triage", () => {
  const f: FailureView = {
    record: "episode#E1",
    entity: "episode",
    key: "E1",
    status: "failed",
    code: "http_400",
    message: "no",
    attempts: 1,
    target_id: null,
    run_id: "r",
    updated_at_ms: 0,
    fields: [
      { name: "episode_key", value: "E1", required: true, key: true },
      { name: "title", value: "Bats DRAFT", required: true, key: false },
      { name: "slug", value: "bats", required: true, key: false },
    ],
  };

  it("sends only the fields staff changed, never the key", () => {
    expect(editsOf(f, { episode_key: "E2", title: "Bats", slug: "bats" })).toEqual([{ field: "title", value: "Bats" }]);
    expect(editsOf(f, {})).toEqual([]);
  });

  it("puts each problem under its field", () => {
    expect(
      problemsByField([
        { field: "slug", message: "bad slug", hint: "" },
        { field: null, message: "whole record", hint: "" },
      ]),
    ).toEqual({ slug: ["bad slug"], "": ["whole record"] });
  });
});

describe("runs", () => {
  const run: RunView = {
    id: "triage-1",
    kind: "triage",
    profile: "desk",
    note: 'retry with title=Bats, "quoted"',
    who: "ana",
    started_at_ms: 0,
    finished_at_ms: 1500,
    files: ["episode#E1"],
    counts: { records: 1, synced: 0 },
  };

  it("lists counts that say something", () => {
    expect(runCounts(run)).toEqual([["records", 1]]);
  });
});

describe("logs", () => {
  const line = (level: string, message: string, run_id: string | null, fields: string[] = []): LogLine => ({
    timestamp: "t",
    level,
    message,
    run_id,
    fields,
    raw: "",
  });
  const lines = [
    line("INFO", "planned", "r1", ["new=5"]),
    line("WARN", "cancelled: the rest is not sent", "r2"),
    line("ERROR", "the target refused the credentials", null),
    line("INFO", "enqueued", "r2", ["entity=episode"]),
  ];

  it("filters by level, text (message or fields, any case) and run", () => {
    expect(filterLogs(lines, "WARN", "", "").map((l) => l.level)).toEqual(["WARN", "ERROR"]);
    expect(filterLogs(lines, "INFO", "EPISODE", "").map((l) => l.message)).toEqual(["enqueued"]);
    expect(filterLogs(lines, "INFO", "", "r2").length).toBe(2);
    expect(runsIn(lines)).toEqual(["r2", "r1"]);
  });
});
