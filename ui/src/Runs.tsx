// The run history: syncs and triage actions of the header's profile — who, when,
// which files (by hash) or records, counts, duration — newest first. A run opens to
// its records by where they stand now, exported as CSV.
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { backend } from "./backend";
import { formatSeconds, runCounts } from "./ops";

export function Runs(props: { onClose(): void; onMessage(m: string | null): void }) {
  const runs = useQuery({ queryKey: ["runs"], queryFn: () => backend.runs(100), refetchInterval: 5000 });
  const [open, setOpen] = useState<string | null>(null);
  return (
    <section className="screen runs" role="dialog" aria-label="Runs">
      <div className="plan-head">
        <h2>Runs</h2>
        <button onClick={props.onClose}>Close runs</button>
      </div>
      {runs.error && (
        <div className="message" role="alert">
          {String(runs.error)}
        </div>
      )}
      <table className="runs-table">
        <thead>
          <tr>
            <th>When</th>
            <th>What</th>
            <th>Who</th>
            <th>Profile</th>
            <th>Files or records</th>
            <th>Counts</th>
            <th>Took</th>
          </tr>
        </thead>
        <tbody>
          {(runs.data ?? []).map((r) => (
            <tr key={r.id} data-run={r.id} data-kind={r.kind} className={open === r.id ? "active" : ""}>
              <td>
                <button className="link" onClick={() => setOpen(open === r.id ? null : r.id)}>
                  {new Date(r.started_at_ms).toLocaleString()}
                </button>
              </td>
              <td>
                <b>{r.kind}</b>
                {r.note && <div className="note">{r.note}</div>}
                {r.finished_at_ms == null && <div className="note">not finished</div>}
              </td>
              <td>{r.who}</td>
              <td>{r.profile || "embedded default"}</td>
              <td className="hashes">
                {r.files.map((f) => (
                  <div key={f} title={f}>
                    {r.kind === "sync" ? f.slice(0, 12) + "…" : f}
                  </div>
                ))}
              </td>
              <td>
                {runCounts(r)
                  .map(([k, n]) => `${n.toLocaleString("en-US")} ${k}`)
                  .join(", ")}
              </td>
              <td>{r.finished_at_ms == null ? "—" : formatSeconds((r.finished_at_ms - r.started_at_ms) / 1000)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {open && <RunRecords key={open} id={open} onMessage={props.onMessage} />}
    </section>
  );
}

function RunRecords(props: { id: string; onMessage(m: string | null): void }) {
  const d = useQuery({ queryKey: ["run", props.id], queryFn: () => backend.runDetail(props.id), gcTime: 0 });
  const [outcome, setOutcome] = useState("");
  const v = d.data;
  const exportCsv = async () => {
    try {
      const s = await backend.exportRun(props.id);
      if (s) props.onMessage(`Exported ${s.bytes.toLocaleString("en-US")} records of run ${props.id} to ${s.path}.`);
    } catch (e) {
      props.onMessage(String(e));
    }
  };
  if (!v) return <div className="run-detail">{d.error ? String(d.error) : "Loading…"}</div>;
  const shown = v.records.filter((r) => outcome === "" || r.outcome === outcome);
  return (
    <div className="run-detail" data-testid="run-detail">
      <div className="plan-head">
        <h3>Run {v.run.id}</h3>
        <button onClick={() => void exportCsv()} data-action="export-run">
          Export as CSV
        </button>
      </div>
      <div className="plan-counts">
        {Object.entries(v.by_outcome).map(([k, n]) => (
          <button key={k} className={"count-card" + (outcome === k ? " active" : "")} data-outcome={k} onClick={() => setOutcome(outcome === k ? "" : k)}>
            <b>{(n ?? 0).toLocaleString("en-US")}</b> {k}
          </button>
        ))}
      </div>
      {v.truncated && <p className="note">The first {v.records.length.toLocaleString("en-US")} records are listed; the export has them all.</p>}
      <table className="runs-table">
        <tbody>
          {shown.map((r) => (
            <tr key={r.record} data-record={r.record}>
              <td>{r.record}</td>
              <td className={r.outcome === "failed" ? "errors" : ""}>{r.outcome}</td>
              <td>{r.code ?? ""}</td>
              <td className="note">{r.message ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
