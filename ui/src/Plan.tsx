// The plan: what a sync of the open files would change for the header's profile —
// counts, changed records field by field (long text word by word), blocked records
// with the parent they wait for. Nothing is sent from here.
import { useQuery } from "@tanstack/react-query";
import { useMemo, useState } from "react";
import { backend, type ActiveProfile, type PlanRow } from "./backend";
import { isLong, wordDiff } from "./diff";
import { SyncPanel, type SyncRun } from "./Sync";

/** Counts, and whether their records are listed (unchanged and rejected never are). */
const COUNTS: [keyof import("./backend").PlanCountsView, string, boolean][] = [
  ["new", "New", true],
  ["changed", "Changed", true],
  ["unchanged", "Unchanged", false],
  ["blocked", "Blocked", true],
  ["rejected", "Rejected (see the workbench)", false],
  ["resolve", "Looked up only", true],
  ["not_writable", "Not writable", true],
];

export function Plan(props: { generation: number; active: ActiveProfile | undefined; sync: SyncRun; onClose(): void }) {
  const plan = useQuery({
    // A finished pass or another profile makes a new plan.
    queryKey: ["plan", props.generation, props.active?.name ?? null],
    queryFn: backend.plan,
    gcTime: 0,
  });
  const [picked, setPicked] = useState<string>("all");
  const p = plan.data;
  // "Looked up only" and "Not writable" show only when there are some.
  const shown = COUNTS.filter(([k]) => (k !== "resolve" && k !== "not_writable") || (p?.counts[k] ?? 0) > 0);
  // A filter whose card went away (a new plan without such records) shows all again.
  const action = shown.some(([k, , listed]) => listed && k === picked) ? picked : "all";
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
      <p className="note">Nothing is sent before you press Sync: this is what a sync of the open files, with your edits, would do.</p>
      <SyncPanel sync={props.sync} active={props.active} canStart={!!p && !plan.isFetching} />
      {plan.error && (
        <div className="message" role="alert">
          {String(plan.error)}
        </div>
      )}
      {p && (
        <>
          <div className="plan-counts">
            {shown.map(([k, label, listed]) =>
              listed ? (
                <button
                  key={k}
                  className={"count-card " + k + (action === k ? " active" : "")}
                  data-count={k}
                  onClick={() => setPicked(action === k ? "all" : k)}
                >
                  <b>{p.counts[k].toLocaleString("en-US")}</b> {label}
                </button>
              ) : (
                <span key={k} className={"count-card " + k} data-count={k}>
                  <b>{p.counts[k].toLocaleString("en-US")}</b> {label}
                </span>
              ),
            )}
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
                    <WordDiff old={d.old ?? ""} now={d.new ?? ""} />
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

/** Long text, word by word (computed once per value: the table is words × words). */
function WordDiff(props: { old: string; now: string }) {
  const parts = useMemo(() => wordDiff(props.old, props.now), [props.old, props.now]);
  return (
    <>
      {parts.map((part, i) =>
        part.kind === "same" ? (
          <span key={i}>{part.text}</span>
        ) : part.kind === "del" ? (
          <del key={i}>{part.text}</del>
        ) : (
          <ins key={i}>{part.text}</ins>
        ),
      )}
    </>
  );
}
