// The run history: syncs and triage actions of the header's profile — who, when,
// which files (by hash) or records, counts, duration — newest first.
import { useQuery } from "@tanstack/react-query";
import { backend } from "./backend";
import { formatSeconds, runCounts } from "./ops";

export function Runs(props: { onClose(): void }) {
  const runs = useQuery({ queryKey: ["runs"], queryFn: () => backend.runs(100), refetchInterval: 5000 });
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
            <tr key={r.id} data-run={r.id} data-kind={r.kind}>
              <td>{new Date(r.started_at_ms).toLocaleString()}</td>
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
    </section>
  );
}
