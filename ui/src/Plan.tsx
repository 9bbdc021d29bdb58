// The plan: what a sync of the open files would change for the header's profile —
// counts, changed records field by field (long text word by word), blocked records
// with the parent they wait for. Nothing is sent from here.
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { backend, type PlanRow } from "./backend";
import { isLong, wordDiff } from "./diff";

const COUNTS: [keyof import("./backend").PlanCountsView, string][] = [
  ["new", "New"],
  ["changed", "Changed"],
  ["unchanged", "Unchanged"],
  ["blocked", "Blocked"],
  ["rejected", "Rejected"],
  ["resolve", "Looked up only"],
  ["not_writable", "Not writable"],
];

export function Plan(props: { generation: number; onClose(): void }) {
  const plan = useQuery({
    queryKey: ["plan", props.generation],
    queryFn: backend.plan,
    gcTime: 0,
  });
  const [action, setAction] = useState<string>("all");
  const p = plan.data;
  const rows = (p?.records ?? []).filter((r) => action === "all" || r.action === action);
  return (
    <section className="plan" role="dialog" aria-label="Plan">
      <div className="plan-head">
        <h2>Plan {p && <span className="note">for {p.profile}</span>}</h2>
        {p?.production && <span className="prod-badge">PRODUCTION</span>}
        <button onClick={() => void plan.refetch()} disabled={plan.isFetching}>
          {plan.isFetching ? "Planning…" : "Plan again"}
        </button>
        <button onClick={props.onClose}>Close plan</button>
      </div>
      <p className="note">Nothing has been sent: this is what a sync of the open files, with your edits, would do.</p>
      {plan.error && (
        <div className="message" role="alert">
          {String(plan.error)}
        </div>
      )}
      {p && (
        <>
          <div className="plan-counts">
            {COUNTS.filter(([k]) => k !== "resolve" && k !== "not_writable" ? true : p.counts[k] > 0).map(([k, label]) => (
              <button
                key={k}
                className={"count-card " + k + (action === k ? " active" : "")}
                data-count={k}
                onClick={() => setAction(action === k ? "all" : k)}
              >
                <b>{p.counts[k].toLocaleString("en-US")}</b> {label}
              </button>
            ))}
          </div>
          {p.truncated && (
            <p className="note">The first {p.records.length.toLocaleString("en-US")} records are listed; the counts are exact.</p>
          )}
          <ul className="plan-records">
            {rows.map((r) => (
              <PlanRecord key={`${r.entity}#${r.key}`} row={r} />
            ))}
            {rows.length === 0 && <li className="note">No records to list here.</li>}
          </ul>
        </>
      )}
    </section>
  );
}

function PlanRecord({ row }: { row: PlanRow }) {
  return (
    <li className={"plan-record " + row.action} data-record={`${row.entity}#${row.key}`}>
      <div>
        <span className="action">{row.action.replace("_", " ")}</span> <b>{row.entity}</b> {row.key}
        {row.blocked_by && <span className="note"> waits for {row.blocked_by}</span>}
      </div>
      {row.diff.length > 0 && (
        <table className="diff">
          <tbody>
            {row.diff.map((d) => (
              <tr key={d.field} data-field={d.field}>
                <th>{d.field}</th>
                {isLong(d.old, d.new) ? (
                  <td colSpan={2} className="words">
                    {wordDiff(d.old ?? "", d.new ?? "").map((part, i) =>
                      part.kind === "same" ? (
                        <span key={i}>{part.text}</span>
                      ) : part.kind === "del" ? (
                        <del key={i}>{part.text}</del>
                      ) : (
                        <ins key={i}>{part.text}</ins>
                      ),
                    )}
                  </td>
                ) : (
                  <>
                    <td className="old">{d.old ?? <em>empty</em>}</td>
                    <td className="new">→ {d.new ?? <em>empty</em>}</td>
                  </>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </li>
  );
}
