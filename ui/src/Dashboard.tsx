// The dashboard: the queues now (the numbers `metasync status --format json` prints),
// their depth over the last hour per type (uPlot), throughput and 429s per minute,
// the target's latency, and the latest runs. Read every two seconds while shown.
import { useQuery } from "@tanstack/react-query";
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { backend, type DashboardView } from "./backend";
import { depthSeries, minuteTotals, runCounts, TYPES } from "./ops";
import { SyncStatus, type SyncRun } from "./Sync";

export function Dashboard(props: { sync: SyncRun; onClose(): void }) {
  const d = useQuery({ queryKey: ["dashboard"], queryFn: backend.dashboard, refetchInterval: 2000 });
  const v = d.data;
  const queued = (v?.queues ?? []).reduce((a, q) => a + q.visible + q.in_flight, 0);
  return (
    <section className="screen dashboard" role="dialog" aria-label="Dashboard">
      <div className="plan-head">
        <h2>Dashboard {v && <span className="note">for {v.profile}</span>}</h2>
        {v?.production && <span className="prod-badge">PRODUCTION</span>}
        {v?.interrupted && !props.sync.running && (
          <button className="primary" onClick={() => void props.sync.resume()} data-action="resume">
            Resume the sync on {v.interrupted.profile ?? "the embedded default"} that did not finish
          </button>
        )}
        {queued > 0 && !props.sync.running && !v?.interrupted && (
          <button onClick={() => void props.sync.sendQueued()}>Send the {queued.toLocaleString("en-US")} queued messages</button>
        )}
        <button onClick={props.onClose}>Close dashboard</button>
      </div>
      {d.error && (
        <div className="message" role="alert">
          {String(d.error)}
        </div>
      )}
      {props.sync.running && <SyncStatus sync={props.sync} />}
      {v && (
        <>
          <table className="queues" data-testid="queues" data-at={v.at_ms}>
            <thead>
              <tr>
                <th>Queue</th>
                <th>Visible</th>
                <th>In flight</th>
                <th>Dead letters</th>
                <th title="this desktop's workers, the busiest minute of the last hour">Synced / min</th>
                <th>429 / min</th>
                <th title="the target's answers in the latest sync">p50</th>
                <th>p95</th>
              </tr>
            </thead>
            <tbody>
              {v.queues.map((q) => {
                const t = v.per_type.find((x) => x.entity === q.entity);
                const ms = (x: number | null | undefined) => (x == null ? "—" : `${x} ms`);
                return (
                  <tr key={q.entity} data-type={q.entity}>
                    <th>{q.entity}</th>
                    <td data-col="visible">{q.visible}</td>
                    <td data-col="in_flight">{q.in_flight}</td>
                    <td data-col="dead" className={q.dead ? "errors" : ""}>
                      {q.dead}
                    </td>
                    <td data-col="synced_per_minute">{t?.synced_per_minute ?? 0}</td>
                    <td data-col="throttled_per_minute">{t?.throttled_per_minute ?? 0}</td>
                    <td data-col="p50">{ms(t?.latency_p50_ms)}</td>
                    <td data-col="p95">{ms(t?.latency_p95_ms)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          <Cards v={v} />
          <div className="charts">
            {TYPES.map((t) => (
              <DepthChart key={t} v={v} type={t} />
            ))}
          </div>
          <h3>Latest runs</h3>
          <ul className="runs-brief">
            {v.runs.map((r) => (
              <li key={r.id} data-run={r.id}>
                <b>{r.kind}</b> {new Date(r.started_at_ms).toLocaleString()} by {r.who}
                {r.note && <em> — {r.note}</em>}:{" "}
                {runCounts(r)
                  .map(([k, n]) => `${n.toLocaleString("en-US")} ${k}`)
                  .join(", ")}
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}

function Cards({ v }: { v: DashboardView }) {
  const m = minuteTotals(v);
  const failures = Object.entries(v.failures);
  return (
    <div className="plan-counts">
      <span className="count-card" data-card="throughput">
        <b>{m.lastMinute ? m.lastMinute.synced.toLocaleString("en-US") : 0}</b> synced in the last busy minute (
        {m.synced.toLocaleString("en-US")} this hour)
      </span>
      <span className="count-card" data-card="throttled">
        <b>{m.lastMinute ? m.lastMinute.throttled : 0}</b> × 429 in that minute ({m.throttled} this hour)
      </span>
      <span className="count-card" data-card="latency">
        {v.latency_p50_ms != null ? (
          <>
            <b>{v.latency_p50_ms}</b> ms p50, <b>{v.latency_p95_ms}</b> ms p95 (latest sync)
          </>
        ) : (
          "no target latency yet"
        )}
      </span>
      <span className="count-card" data-card="failures">
        <b>{failures.reduce((a, [, n]) => a + (n ?? 0), 0)}</b> in triage
        {failures.length > 0 && ": " + failures.map(([c, n]) => `${c} ${n}`).join(", ")}
      </span>
    </div>
  );
}

const SERIES = [
  { label: "visible", stroke: "#14606f" },
  { label: "in flight", stroke: "#d68910" },
  { label: "dead", stroke: "#c0392b" },
];

function DepthChart({ v, type }: { v: DashboardView; type: (typeof TYPES)[number] }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const data = depthSeries(v, type);
  useEffect(() => {
    if (!box.current) return;
    const u = new uPlot(
      {
        width: 300,
        height: 140,
        title: type,
        legend: { show: true },
        series: [{}, ...SERIES.map((s) => ({ ...s, width: 1.5 }))],
        axes: [{}, { size: 40 }],
      },
      [[], [], [], []],
      box.current,
    );
    plot.current = u;
    return () => {
      u.destroy();
      plot.current = null;
    };
  }, [type]);
  useEffect(() => {
    plot.current?.setData(data);
  });
  return <div className="chart" ref={box} data-chart={type} data-points={data[0].length} />;
}
