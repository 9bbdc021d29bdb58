// The live log: the lines the log file gets, newest at the bottom, filtered by level,
// text and run. The tail itself is kept by App for the window's life.
import { useEffect, useRef, useState } from "react";
import type { LogLine } from "./backend";
import { filterLogs, runsIn } from "./ops";

export function Logs(props: { lines: LogLine[]; onClose(): void }) {
  const [level, setLevel] = useState("INFO");
  const [search, setSearch] = useState("");
  const [run, setRun] = useState("");
  const shown = filterLogs(props.lines, level, search, run).slice(-1000);
  const end = useRef<HTMLDivElement>(null);
  useEffect(() => end.current?.scrollIntoView({ block: "end" }), [shown.length]);
  return (
    <section className="screen logs" role="dialog" aria-label="Logs">
      <div className="plan-head">
        <h2>Logs</h2>
        <select aria-label="Level" value={level} onChange={(e) => setLevel(e.target.value)}>
          <option value="DEBUG">all</option>
          <option value="INFO">info and above</option>
          <option value="WARN">warnings and errors</option>
          <option value="ERROR">errors</option>
        </select>
        <input aria-label="Search the log" placeholder="Search" value={search} onChange={(e) => setSearch(e.target.value)} />
        <select aria-label="Run" value={run} onChange={(e) => setRun(e.target.value)}>
          <option value="">every run</option>
          {runsIn(props.lines).map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
        <button onClick={props.onClose}>Close logs</button>
      </div>
      <div className="log-lines" data-testid="log-lines">
        {shown.length === 0 && <p className="note">No line matches yet.</p>}
        {shown.map((l, i) => (
          <div key={i} className={"log-line " + l.level.toLowerCase()} data-run={l.run_id ?? ""}>
            <span className="ts">{l.timestamp.replace("T", " ").slice(0, 23)}</span> <b>{l.level}</b> {l.message}
            {l.run_id && <span className="note"> run={l.run_id}</span>}
            {l.fields.length > 0 && <span className="note"> {l.fields.join(" ")}</span>}
          </div>
        ))}
        <div ref={end} />
      </div>
    </section>
  );
}
