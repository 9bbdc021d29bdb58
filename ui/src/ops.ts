// The operations room's logic, with no React and no backend in it: what the sync
// panel, the dashboard and triage show, computed from what the Rust side sends.
import type { DashboardView, FailureView, FieldEdit, FieldProblem, LogLine, RunView, SyncUpdate } from "./backend";

export const TYPES = ["show", "season", "episode", "asset"] as const;

/** "1 min 05 s", "12 s", or "—" when it cannot be known yet. */
export function formatSeconds(s: number | null | undefined): string {
  if (s == null || !Number.isFinite(s) || s < 0) return "—";
  const t = Math.round(s);
  if (t < 60) return `${t} s`;
  const m = Math.floor(t / 60);
  if (m < 60) return `${m} min ${String(t % 60).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

/** The share of sent records resolved, 0–100 (a type with nothing sent is done). */
export function percent(done: number, total: number): number {
  if (total <= 0) return 100;
  return Math.min(100, Math.round((done / total) * 100));
}

/** One line per type that has anything to show. */
export function progressRows(u: SyncUpdate) {
  return u.types
    .filter((t) => t.enqueued + t.unchanged + t.synced + t.failed > 0)
    .map((t) => ({ ...t, percent: percent(t.synced + t.failed, t.enqueued) }));
}

/** Production syncs wait for the profile's name, typed exactly. */
export function confirmed(production: boolean, name: string | null, typed: string): boolean {
  return !production || (name !== null && typed.trim() === name);
}

/** A dashboard's depth samples as uPlot data for one type: [times (s), visible, in flight, dead]. */
export function depthSeries(d: DashboardView, type: (typeof TYPES)[number]): [number[], number[], number[], number[]] {
  const i = TYPES.indexOf(type);
  const out: [number[], number[], number[], number[]] = [[], [], [], []];
  for (const s of d.depth) {
    const v = s.depth[i];
    if (!v) continue;
    out[0].push(s.t / 1000);
    out[1].push(v[0]);
    out[2].push(v[1]);
    out[3].push(v[2]);
  }
  return out;
}

/** Totals of the per-minute rows (what the dashboard's throughput cards say). */
export function minuteTotals(d: DashboardView) {
  const n = d.minutes.length;
  const synced = d.minutes.reduce((a, m) => a + m.synced, 0);
  const throttled = d.minutes.reduce((a, m) => a + m.throttled, 0);
  const last = d.minutes[n - 1];
  return { synced, throttled, lastMinute: last ?? null };
}

/** Failures in triage, for the tab's badge. */
export function failureCount(d: Pick<DashboardView, "failures"> | undefined): number {
  if (!d) return 0;
  return Object.values(d.failures).reduce<number>((a, n) => a + (n ?? 0), 0);
}

/** The fields staff changed, as the retry sends them (the key is never sent). */
export function editsOf(f: FailureView, values: Record<string, string>): FieldEdit[] {
  return f.fields
    .filter((x) => !x.key && values[x.name] !== undefined && values[x.name] !== x.value)
    .map((x) => ({ field: x.name, value: values[x.name] }));
}

/** Problems by field name ("" for the record as a whole). */
export function problemsByField(ps: FieldProblem[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const p of ps) (out[p.field ?? ""] ??= []).push(p.message);
  return out;
}

/** A run's counts in the order staff read them. */
export function runCounts(r: RunView): [string, number][] {
  const order = ["rows", "synced", "unchanged", "rejected", "failed", "discarded", "not_sent", "queued", "records"];
  const c = r.counts as Record<string, number | undefined>;
  return order.filter((k) => c[k] !== undefined && (c[k] ?? 0) > 0).map((k) => [k.replace("_", " "), c[k] ?? 0]);
}

const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];

/** The log lines staff asked for: at or above a level, holding the search text
 * (any case, message or fields), of one run. */
export function filterLogs(lines: LogLine[], level: string, search: string, run: string): LogLine[] {
  const min = Math.max(0, LEVELS.indexOf(level));
  const q = search.trim().toLowerCase();
  return lines.filter(
    (l) =>
      LEVELS.indexOf(l.level) >= min &&
      (run === "" || l.run_id === run) &&
      (q === "" || l.message.toLowerCase().includes(q) || l.fields.some((f) => f.toLowerCase().includes(q))),
  );
}

/** The runs the lines mention, newest first. */
export function runsIn(lines: LogLine[]): string[] {
  const seen: string[] = [];
  for (let i = lines.length - 1; i >= 0; i--) {
    const r = lines[i].run_id;
    if (r && !seen.includes(r)) seen.push(r);
  }
  return seen;
}
