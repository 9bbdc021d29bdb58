// The sync: the form (records per message, a trial limit ranked by a column, the
// production name), live progress per entity type with rate, 429s and ETA, cancel,
// and how it ended — including what was left unsent. The run itself lives in App
// (useSyncRun) so it goes on while staff look at other screens.
import { useQueryClient } from "@tanstack/react-query";
import { useCallback, useState } from "react";
import { backend, type ActiveProfile, type SyncDone, type SyncForm, type SyncUpdate } from "./backend";
import { confirmed, formatSeconds, progressRows } from "./ops";

export interface SyncRun {
  update: SyncUpdate | null;
  /** Updates heard in this run (the progress element carries it, for the benchmark). */
  updates: number;
  done: SyncDone | null;
  error: string | null;
  running: boolean;
  start(form: SyncForm): Promise<void>;
  cancel(): void;
  sendQueued(): Promise<void>;
  resume(): Promise<void>;
}

/** One sync at a time, its updates, and the screens to refresh when it ends. */
export function useSyncRun(onEnded: (d: SyncDone) => void): SyncRun {
  const qc = useQueryClient();
  const [update, setUpdate] = useState<SyncUpdate | null>(null);
  const [updates, setUpdates] = useState(0);
  const [done, setDone] = useState<SyncDone | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [running, setRunning] = useState(false);
  const run = useCallback(
    async (go: (on: (u: SyncUpdate) => void) => Promise<SyncDone | null>) => {
      setRunning(true);
      setError(null);
      setDone(null);
      setUpdates(0);
      const heard = (u: SyncUpdate) => {
        setUpdate(u);
        setUpdates((n) => n + 1);
      };
      try {
        const d = await go(heard);
        if (d) {
          setDone(d);
          onEnded(d);
        } else setUpdate(null);
      } catch (e) {
        setError(String(e));
      } finally {
        setRunning(false);
        void qc.invalidateQueries({ queryKey: ["dashboard"] });
        void qc.invalidateQueries({ queryKey: ["failures"] });
        void qc.invalidateQueries({ queryKey: ["runs"] });
        void qc.invalidateQueries({ queryKey: ["plan"] });
      }
    },
    [qc, onEnded],
  );
  return {
    update,
    updates,
    done,
    error,
    running,
    start: (form) => run((on) => backend.sync(form, on)),
    cancel: () => void backend.cancelSync(),
    sendQueued: () => run((on) => backend.sendQueued(on)),
    resume: () => run((on) => backend.resume(on)),
  };
}

export function SyncPanel(props: { sync: SyncRun; active: ActiveProfile | undefined; canStart: boolean }) {
  const { sync, active } = props;
  const [batch, setBatch] = useState("10");
  const [limit, setLimit] = useState("");
  const [rankBy, setRankBy] = useState("");
  const [typed, setTyped] = useState("");
  const production = active?.production ?? false;
  const ok = confirmed(production, active?.name ?? null, typed);
  const start = () => {
    const n = limit.trim() === "" ? null : Number(limit);
    void sync.start({
      batch_size: Number(batch),
      limit: n,
      rank_by: rankBy.trim() === "" ? null : rankBy.trim(),
      confirm: production ? typed : null,
    });
  };
  return (
    <section className="sync" aria-label="Sync">
      {!sync.running && (
        <form
          className="sync-form"
          onSubmit={(e) => {
            e.preventDefault();
            if (ok && props.canStart) start();
          }}
        >
          <label>
            Records per message
            <input aria-label="Records per message" type="number" min={1} max={100} value={batch} onChange={(e) => setBatch(e.target.value)} />
          </label>
          <label>
            Send only the top
            <input aria-label="Limit" placeholder="all" value={limit} onChange={(e) => setLimit(e.target.value)} />
          </label>
          <label>
            ranked by column
            <input aria-label="Rank by" placeholder="(file order)" value={rankBy} onChange={(e) => setRankBy(e.target.value)} />
          </label>
          {production && (
            <label className="confirm">
              Type <b>{active?.name}</b> to sync to production
              <input aria-label="Confirm profile" value={typed} onChange={(e) => setTyped(e.target.value)} />
            </label>
          )}
          <button type="submit" className="primary" disabled={!ok || !props.canStart} data-action="sync">
            Sync to {active?.label ?? "…"}
          </button>
        </form>
      )}
      {sync.error && (
        <div className="message" role="alert">
          {sync.error}
        </div>
      )}
      {sync.update && <Progress u={sync.update} updates={sync.updates} running={sync.running} onCancel={sync.cancel} />}
      {sync.done && !sync.running && <Ended d={sync.done} onSendQueued={() => void sync.sendQueued()} />}
    </section>
  );
}

/** The running (or last) sync's progress and end, for screens other than the plan. */
export function SyncStatus({ sync }: { sync: SyncRun }) {
  if (!sync.update) return null;
  return (
    <section className="sync" aria-label="Sync status">
      <Progress u={sync.update} updates={sync.updates} running={sync.running} onCancel={sync.cancel} />
      {sync.done && !sync.running && <Ended d={sync.done} onSendQueued={() => void sync.sendQueued()} />}
    </section>
  );
}

function Progress(props: { u: SyncUpdate; updates: number; running: boolean; onCancel(): void }) {
  const { u } = props;
  return (
    <div className="sync-progress" data-stage={u.stage} data-updates={props.updates}>
      <div className="sync-line">
        <b>{u.stage === "done" ? "Finished" : u.stage[0].toUpperCase() + u.stage.slice(1) + "…"}</b>
        <span>
          {u.resolved.toLocaleString("en-US")}
          {u.total > 0 ? ` of ${u.total.toLocaleString("en-US")} sent` : ""} records resolved
        </span>
        <span>{u.rate_per_second.toFixed(1)} records/s</span>
        <span data-testid="throttled">{u.throttled} × 429</span>
        <span>ETA {formatSeconds(u.eta_seconds)}</span>
        {props.running && (
          <button onClick={props.onCancel} disabled={u.cancelling} data-action="cancel-sync">
            {u.cancelling ? "Cancelling…" : "Cancel"}
          </button>
        )}
      </div>
      <table className="sync-types">
        <thead>
          <tr>
            <th>Type</th>
            <th>Enqueued</th>
            <th>Synced</th>
            <th>Unchanged</th>
            <th>Failed</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {progressRows(u).map((t) => (
            <tr key={t.entity} data-type={t.entity}>
              <th>{t.entity}</th>
              <td>{t.enqueued.toLocaleString("en-US")}</td>
              <td data-col="synced">{t.synced.toLocaleString("en-US")}</td>
              <td>{t.unchanged.toLocaleString("en-US")}</td>
              <td data-col="failed" className={t.failed ? "errors" : ""}>
                {t.failed.toLocaleString("en-US")}
              </td>
              <td className="bar">
                <span style={{ width: `${t.percent}%` }} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Ended({ d, onSendQueued }: { d: SyncDone; onSendQueued(): void }) {
  const n = (x: number) => x.toLocaleString("en-US");
  return (
    <div className="sync-done" data-testid="sync-done" data-failed={d.failed} data-synced={d.synced}>
      <p>
        {d.cancelled ? "Cancelled" : "Done"} in {formatSeconds(d.elapsed_ms / 1000)}: <b>{n(d.synced)}</b> synced,{" "}
        {n(d.unchanged)} unchanged, {n(d.rejected)} rejected, <b className={d.failed ? "errors" : ""}>{n(d.failed)}</b> failed
        {d.discarded > 0 && <>, {n(d.discarded)} discarded</>}. {d.throttled > 0 && <>{n(d.throttled)} × 429. </>}
        {d.latency_p50_ms != null && (
          <>
            Target latency p50 {d.latency_p50_ms} ms, p95 {d.latency_p95_ms} ms.
          </>
        )}
      </p>
      {(d.not_sent > 0 || d.queued > 0) && (
        <p className="note">
          Left unsent: {n(d.not_sent)} records never enqueued{d.cancelled ? "" : " (the limit)"}; {n(d.queued)} waiting in the
          queues.{" "}
          {d.queued > 0 && <button onClick={onSendQueued}>Send what is queued</button>}
        </p>
      )}
      {d.failed > 0 && <p className="note">The failures wait in Triage.</p>}
      <p className="note">Run {d.run_id} on {d.profile}.</p>
    </div>
  );
}
