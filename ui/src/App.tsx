// The workbench window: open files, see every problem in place, fix them, save.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useRef, useState } from "react";
import { backend, type FileProgress, type FileSummary, type FindingView, type ViewArg } from "./backend";
import { FixPanel } from "./FixPanel";
import { MappingEditor } from "./MappingEditor";
import { opensByItself } from "./mapping";
import { Grid, type GridHandle, type Jump } from "./grid/Grid";
import { viewLabel } from "./labels";
import type { LogLine } from "./backend";
import { Dashboard } from "./Dashboard";
import { Logs } from "./Logs";
import { failureCount } from "./ops";
import { Plan } from "./Plan";
import { Runs } from "./Runs";
import { ProfileSwitcher, Settings } from "./Settings";
import { useSyncRun } from "./Sync";
import { Triage } from "./Triage";

type Screen = "work" | "settings" | "plan" | "dashboard" | "triage" | "runs" | "logs";

/** Lines of the live log kept in the window. */
const LOG_LINES_KEPT = 5000;

export function App() {
  const qc = useQueryClient();
  const files = useQuery({ queryKey: ["files"], queryFn: backend.files });
  const [progress, setProgress] = useState<Record<number, FileProgress>>({});
  const [generation, setGeneration] = useState(0);
  const [activeId, setActiveId] = useState<number | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  // The screen over the files: the workbench itself, or one of the operations room's.
  const [screen, setScreen] = useState<Screen>("work");
  const toggle = (s: Screen) => setScreen((now) => (now === s ? "work" : s));
  const active = useQuery({ queryKey: ["active"], queryFn: backend.activeProfile });
  // The triage tab's badge follows the dashboard: read again after every sync and
  // triage action, every two seconds while the dashboard is open, else each minute
  // (an AWS profile pays for each read).
  const dash = useQuery({ queryKey: ["dashboard"], queryFn: backend.dashboard, refetchInterval: 60_000 });
  const failures = failureCount(dash.data);
  const ended = useCallback((d: { failed: number; cancelled: boolean }) => {
    if (d.failed > 0) setMessage(`The sync ended with ${d.failed} failed: see Triage.`);
  }, []);
  const sync = useSyncRun(ended);
  // A sync's error, wherever staff are (a resume at start has no screen of its own).
  useEffect(() => {
    if (sync.error) setMessage(sync.error);
  }, [sync.error]);
  const [closing, setClosing] = useState(false);
  const [logLines, setLogLines] = useState<LogLine[]>([]);

  useEffect(() => {
    // A sync the app did not see end (closed, killed) goes on from the queues.
    void sync.resume();
    // The first batch is the kept lines: it replaces what a watch before it sent.
    let first = true;
    void backend.watchLogs((batch) => {
      setLogLines((now) => (first ? batch : [...now, ...batch]).slice(-LOG_LINES_KEPT));
      first = false;
    });
    const off = backend.onCloseDuringSync(() => setClosing(true));
    return () => void off.then((f) => f());
    // Once, at start (sync.resume is a new function every render).
  }, []);

  useEffect(() => {
    void backend.watch((e) => {
      if (e.kind === "progress") {
        setProgress(Object.fromEntries(e.files.map((f) => [f.id, f])));
        void qc.invalidateQueries({ queryKey: ["files"] });
      } else if (e.kind === "checked") {
        setProgress({});
        qc.setQueryData(["files"], e.files);
        setGeneration((g) => g + 1);
      } else {
        setMessage(e.message);
      }
    });
    // Files handed over before the page listened (command line, an early drop).
    void qc.invalidateQueries({ queryKey: ["files"] });
  }, [qc]);

  const list = files.data ?? [];
  // With no file left there is nothing to plan: back to the drop zone.
  useEffect(() => {
    if (files.data && files.data.length === 0) setScreen((now) => (now === "plan" ? "work" : now));
  }, [files.data]);
  const current = list.find((f) => f.id === activeId) ?? list[0] ?? null;

  const open = async () => {
    const results = await backend.openDialog();
    const errors = results.filter((r) => r.error).map((r) => r.error);
    setMessage(errors.length ? errors.join("\n") : null);
    const opened = results.find((r) => r.ok)?.ok;
    if (opened) setActiveId(opened.id);
    void qc.invalidateQueries({ queryKey: ["files"] });
  };

  return (
    <div className="app">
      <header className={active.data?.production ? "production" : ""}>
        <h1>Metasync</h1>
        <ProfileSwitcher active={active.data} onMessage={setMessage} />
        <nav className="tabs">
          {list.map((f) => (
            <button
              key={f.id}
              className={"tab" + (current?.id === f.id ? " active" : "")}
              onClick={() => {
                setActiveId(f.id);
                setScreen("work");
              }}
              title={f.path}
            >
              {f.name}
              {f.invalid > 0 && <span className="badge">{f.invalid.toLocaleString("en-US")}</span>}
            </button>
          ))}
        </nav>
        <button onClick={open}>Open files…</button>
        <button onClick={() => toggle("plan")} aria-pressed={screen === "plan"} disabled={list.length === 0} data-screen="plan">
          Plan {sync.running && <span className="spinner" title="a sync is running" />}
        </button>
        <button onClick={() => toggle("dashboard")} aria-pressed={screen === "dashboard"} data-screen="dashboard">
          Dashboard
        </button>
        <button onClick={() => toggle("triage")} aria-pressed={screen === "triage"} data-screen="triage">
          Triage {failures > 0 && <span className="badge" data-testid="triage-badge">{failures}</span>}
        </button>
        <button onClick={() => toggle("runs")} aria-pressed={screen === "runs"} data-screen="runs">
          Runs
        </button>
        <button onClick={() => toggle("logs")} aria-pressed={screen === "logs"} data-screen="logs">
          Logs
        </button>
        <button onClick={() => toggle("settings")} aria-pressed={screen === "settings"} data-screen="settings">
          Settings
        </button>
      </header>
      {message && (
        <div className="message" role="alert">
          {message} <button onClick={() => setMessage(null)}>Dismiss</button>
        </div>
      )}
      {closing && (
        <div className="message modal" role="alertdialog" aria-label="Close during a sync">
          A sync is running. If you close now, the workers stop and the sync goes on from the queues the next time
          Metasync starts.{" "}
          <button onClick={() => setClosing(false)} data-action="keep-syncing">
            Keep syncing
          </button>{" "}
          <button onClick={() => void backend.quit()} data-action="close-anyway">
            Close anyway
          </button>
        </div>
      )}
      {screen === "settings" ? (
        <Settings onClose={() => setScreen("work")} />
      ) : screen === "dashboard" ? (
        <Dashboard sync={sync} onClose={() => setScreen("work")} />
      ) : screen === "triage" ? (
        <Triage onClose={() => setScreen("work")} onMessage={setMessage} />
      ) : screen === "runs" ? (
        <Runs onClose={() => setScreen("work")} onMessage={setMessage} />
      ) : screen === "logs" ? (
        <Logs lines={logLines} onClose={() => setScreen("work")} />
      ) : screen === "plan" && list.length > 0 ? (
        <Plan generation={generation} active={active.data} sync={sync} onClose={() => setScreen("work")} />
      ) : current ? (
        <Workspace key={current.id} file={current} progress={progress[current.id]} generation={generation} onMessage={setMessage} />
      ) : (
        <section className="drop" aria-label="Drop zone">
          <p>
            <strong>Drop CSV files here</strong>, or <button onClick={open}>open them</button>.
          </p>
          <p>Shows, seasons, episodes and assets, as exported from a spreadsheet: every problem is highlighted in place.</p>
        </section>
      )}
    </div>
  );
}

function Workspace(props: {
  file: FileSummary;
  progress: FileProgress | undefined;
  generation: number;
  onMessage(m: string | null): void;
}) {
  const { file, progress, generation, onMessage } = props;
  const qc = useQueryClient();
  const [view, setView] = useState<ViewArg>({ kind: "all" });
  const [selected, setSelected] = useState<{ row: number; column: number | null } | null>(null);
  const [goTo, setGoTo] = useState("");
  const [editGen, setEditGen] = useState(0);
  const [mapping, setMapping] = useState(false);
  const [jumpTo, setJumpTo] = useState<Jump | null>(null);
  const [offered, setOffered] = useState(false);
  // Columns nobody recognises open the editor by itself, once.
  useEffect(() => {
    if (!offered && opensByItself(file)) {
      setOffered(true);
      setMapping(true);
    }
  }, [file, offered]);
  const grid = useRef<GridHandle>(null);
  const gen = generation * 1000 + editGen;

  const findings = useQuery({
    queryKey: ["findings", file.id, selected?.row, gen],
    queryFn: () => (selected ? backend.rowFindings(file.id, selected.row) : Promise.resolve([] as FindingView[])),
  });

  const fail = (e: unknown) => onMessage(String(e));
  const refresh = () => {
    setEditGen((g) => g + 1);
    void qc.invalidateQueries({ queryKey: ["files"] });
  };

  const show = async (row: number) => {
    const pos = await backend.position(file.id, view, row);
    if (pos === null) {
      // Not in this filter: show every row, then jump once their count is in.
      setView({ kind: "all" });
      setJumpTo({ pos: row, total: file.rows, nonce: Date.now() });
    } else grid.current?.scrollToPosition(pos);
    setSelected({ row, column: null });
  };

  const jump = async (forward: boolean) => {
    const next = await backend.nextError(file.id, selected?.row ?? null, forward).catch(fail);
    if (next != null) await show(next);
  };

  const pct = progress && progress.size > 0 ? Math.min(100, Math.round((progress.bytes / progress.size) * 100)) : null;
  return (
    <main className="workspace">
      <section className="file-info">
        <span className="type">{file.entity_type ?? "unknown type"}</span>
        <span>{file.encoding}</span>
        <span>delimiter {file.delimiter}</span>
        <span className="rows">{file.rows.toLocaleString("en-US")} rows</span>
        {file.checking || pct !== null ? (
          <span className="checking">
            validating… {progress ? `${progress.rows.toLocaleString("en-US")} rows` : ""} {pct !== null ? `${pct}%` : ""}
            <button onClick={() => void backend.cancel()}>Cancel</button>
          </span>
        ) : (
          <span className={file.invalid || file.unusable ? "errors" : "ok"} data-testid="error-count">
            {file.unusable ? "cannot be read" : `${file.invalid.toLocaleString("en-US")} rows with errors`}
          </span>
        )}
        {!file.indexed && !file.checking && pct === null && !file.unusable && (
          <span className="note">
            Only partly read. <button onClick={() => void backend.revalidate()}>Validate again</button>
          </span>
        )}
        {file.blank_rows > 0 && <span className="note">{file.blank_rows} blank rows skipped</span>}
        {file.edited_cells > 0 && <span className="note">{file.edited_cells} cells edited</span>}
      </section>
      {file.unusable && <div className="message">{file.unusable}</div>}
      {(file.needs_mapping || file.mapping_profile) && (
        <div className="mapping-note">
          {file.mapping_profile
            ? "Columns mapped by your saved profile."
            : "Some columns are not recognised, or a required one is missing."}{" "}
          <button onClick={() => setMapping(true)}>Map columns…</button>
        </div>
      )}
      {file.file_findings.length > 0 && (
        <ul className="file-findings">
          {file.file_findings.map((f, i) => (
            <li key={i} className={f.severity}>
              {f.message} <em>{f.hint}</em>
            </li>
          ))}
        </ul>
      )}
      <section className="toolbar">
        <select
          aria-label="Filter"
          value={view.kind === "code" ? `code:${view.code}` : view.kind}
          onChange={(e) => {
            const v = e.target.value;
            setView(v.startsWith("code:") ? { kind: "code", code: v.slice(5) } : ({ kind: v } as ViewArg));
            grid.current?.scrollToPosition(0);
          }}
        >
          <option value="all">All rows</option>
          <option value="invalid">Rows with errors</option>
          {file.counts.map((c) => (
            <option key={c.code} value={`code:${c.code}`}>
              {viewLabel(c.code)} ({c.count.toLocaleString("en-US")})
            </option>
          ))}
        </select>
        <button onClick={() => void jump(false)}>◀ Previous error</button>
        <button onClick={() => void jump(true)}>Next error ▶</button>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            const n = Number(goTo.replace(/[, ]/g, ""));
            if (Number.isInteger(n) && n >= 1 && n <= file.rows) void show(n - 1);
            else onMessage(`Row ${goTo} does not exist: the file has ${file.rows.toLocaleString("en-US")} rows.`);
          }}
        >
          <input aria-label="Go to row" placeholder="Go to row" value={goTo} onChange={(e) => setGoTo(e.target.value)} />
        </form>
        <button disabled={!file.can_undo} onClick={() => void backend.undo(file.id).then(refresh, fail)}>
          Undo
        </button>
        <SaveButtons id={file.id} encoding={file.encoding} onMessage={onMessage} />
      </section>
      <div className="counts">
        {file.counts.map((c) => (
          <button key={c.code} className="count" onClick={() => setView({ kind: "code", code: c.code })}>
            {viewLabel(c.code)} <b>{c.count.toLocaleString("en-US")}</b>
          </button>
        ))}
      </div>
      {mapping ? (
        <MappingEditor
          file={file}
          onClose={() => setMapping(false)}
          onSaved={(path) => {
            setMapping(false);
            onMessage(`Mapping saved to ${path}; it applies to this export from now on.`);
            refresh();
          }}
          onMessage={onMessage}
        />
      ) : (
      <div className="body">
        <Grid
          ref={grid}
          file={file}
          view={view}
          jump={jumpTo}
          generation={gen}
          selected={selected}
          onSelect={(row, column) => setSelected({ row, column })}
          onEdit={(row, column, value) => void backend.edit(file.id, row, column, value).then(refresh, fail)}
        />
        <aside className="side">
          {selected ? (
            <>
              <h3>Row {(selected.row + 1).toLocaleString("en-US")}</h3>
              {(findings.data ?? []).length === 0 && <p>No problems in this row.</p>}
              {(findings.data ?? []).map((f, i) => (
                <div key={i} className={"finding " + f.severity}>
                  <div>
                    <b>{f.column ?? "row"}</b>: {f.message}
                  </div>
                  <div className="hint">{f.hint}</div>
                </div>
              ))}
              <p className="tip">Double-click a cell to edit it; Enter keeps the change.</p>
            </>
          ) : (
            <p className="tip">Select a row to see its problems.</p>
          )}
          <FixPanel file={file} onDone={refresh} onMessage={onMessage} />
        </aside>
      </div>
      )}
    </main>
  );
}

function SaveButtons(props: { id: number; encoding: string; onMessage(m: string | null): void }) {
  const [format, setFormat] = useState<"original" | "utf8">("original");
  const save = async () => {
    try {
      const s = await backend.save(props.id, format);
      if (s) props.onMessage(`Saved ${s.path} (${s.bytes.toLocaleString("en-US")} bytes).`);
    } catch (e) {
      props.onMessage(String(e));
    }
  };
  const exportErrors = async () => {
    try {
      const s = await backend.exportErrors(props.id);
      if (s) props.onMessage(`Exported ${s.bytes.toLocaleString("en-US")} rows with errors to ${s.path}.`);
    } catch (e) {
      props.onMessage(String(e));
    }
  };
  return (
    <span className="save">
      <select aria-label="Save as" value={format} onChange={(e) => setFormat(e.target.value as "original" | "utf8")}>
        <option value="original">As the original ({props.encoding})</option>
        <option value="utf8">UTF-8, commas</option>
      </select>
      <button onClick={() => void save()}>Save corrected file</button>
      <button onClick={() => void exportErrors()}>Export errors</button>
    </span>
  );
}
