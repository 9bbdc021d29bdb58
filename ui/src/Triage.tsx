// Triage: failures grouped by error code with the target's answer; one failure in full
// with its fields editable (checked as staff type, by the same rules a file row gets);
// retry it (the queues are worked until it ends), retry or discard a whole group, or
// discard one with a reason. A fixed failure leaves the list by itself.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { backend, type TriageTarget } from "./backend";
import { editsOf, problemsByField } from "./ops";

export function Triage(props: { onClose(): void; onMessage(m: string | null): void }) {
  const qc = useQueryClient();
  const groups = useQuery({ queryKey: ["failures"], queryFn: backend.failureGroups, refetchInterval: 5000 });
  const [picked, setPicked] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const refresh = () => {
    void qc.invalidateQueries({ queryKey: ["failures"] });
    void qc.invalidateQueries({ queryKey: ["failure"] });
    void qc.invalidateQueries({ queryKey: ["dashboard"] });
    void qc.invalidateQueries({ queryKey: ["runs"] });
  };
  const act = async (what: () => Promise<string>) => {
    setBusy(true);
    try {
      props.onMessage(await what());
    } catch (e) {
      props.onMessage(String(e));
    } finally {
      setBusy(false);
      refresh();
    }
  };
  const retryGroup = (code: string) =>
    act(async () => {
      const r = await backend.retry({ kind: "code", code }, []);
      return `Retried ${r.records.length} ${code} failures: ${r.synced} synced, ${r.failed} failed again.`;
    });
  const discardGroup = (code: string, reason: string) =>
    act(async () => `Discarded ${(await backend.discard({ kind: "code", code }, reason)).records.length} ${code} failures: ${reason}`);
  const list = groups.data ?? [];
  const still = picked && list.some((g) => g.records.includes(picked)) ? picked : null;
  return (
    <section className="screen triage" role="dialog" aria-label="Triage">
      <div className="plan-head">
        <h2>Triage</h2>
        <button onClick={props.onClose}>Close triage</button>
      </div>
      {groups.error && (
        <div className="message" role="alert">
          {String(groups.error)}
        </div>
      )}
      <div className="triage-body">
        <div className="groups">
          {list.length === 0 && groups.data && <p className="ok" data-testid="no-failures">No failures: everything sent has ended synced, or been discarded.</p>}
          {list.map((g) => (
            <div key={g.code} className="group" data-code={g.code}>
              <div className="group-head">
                <b>{g.code}</b> <span className="badge">{g.count}</span>
                <button disabled={busy} onClick={() => void retryGroup(g.code)}>
                  Retry all
                </button>
              </div>
              <Reason label={`Discard all ${g.code}`} busy={busy} onGo={(r) => void discardGroup(g.code, r)} />
              <div className="sample">{g.sample}</div>
              <ul>
                {g.records.map((r) => (
                  <li key={r}>
                    <button className={"record" + (r === still ? " active" : "")} data-record={r} onClick={() => setPicked(r)}>
                      {r}
                    </button>
                  </li>
                ))}
                {g.count > g.records.length && <li className="note">and {g.count - g.records.length} more</li>}
              </ul>
            </div>
          ))}
        </div>
        {still && <Detail key={still} record={still} busy={busy} act={act} />}
      </div>
    </section>
  );
}

function Detail(props: { record: string; busy: boolean; act(what: () => Promise<string>): Promise<void> }) {
  const f = useQuery({ queryKey: ["failure", props.record], queryFn: () => backend.failure(props.record), gcTime: 0 });
  const [values, setValues] = useState<Record<string, string>>({});
  const v = f.data;
  const edits = v ? editsOf(v, values) : [];
  // Checked as staff type (a quarter of a second after the last key).
  const [problems, setProblems] = useState<Record<string, string[]>>({});
  const key = JSON.stringify(edits);
  useEffect(() => {
    if (!v) return;
    // A slower, older check never overwrites a newer one.
    let current = true;
    const t = setTimeout(() => {
      backend.checkEdits(props.record, edits).then(
        (ps) => current && setProblems(problemsByField(ps)),
        (e) => current && setProblems({ "": [String(e)] }),
      );
    }, 250);
    return () => {
      current = false;
      clearTimeout(t);
    };
    // `key` stands for the edits (a new array every render).
  }, [key, v, props.record]);
  if (!v) return <div className="detail">{f.error ? String(f.error) : "Loading…"}</div>;
  const bad = Object.keys(problems).length > 0;
  const target: TriageTarget = { kind: "record", record: props.record };
  return (
    <div className="detail" data-testid="failure-detail" data-record={props.record}>
      <h3>
        {v.entity} {v.key}
      </h3>
      <dl>
        <dt>Error</dt>
        <dd>
          <b>{v.code}</b> after {v.attempts} {v.attempts === 1 ? "attempt" : "attempts"}
        </dd>
        <dt>The target said</dt>
        <dd className="answer" data-testid="target-answer">
          {v.message}
        </dd>
        <dt>Last change</dt>
        <dd>{new Date(v.updated_at_ms).toLocaleString()}</dd>
        {v.run_id && (
          <>
            <dt>Run</dt>
            <dd>{v.run_id}</dd>
          </>
        )}
        {v.target_id && (
          <>
            <dt>Target id</dt>
            <dd>{v.target_id}</dd>
          </>
        )}
      </dl>
      <form
        className="fields"
        onSubmit={(e) => {
          e.preventDefault();
          if (bad) return;
          void props.act(async () => {
            const r = await backend.retry(target, edits);
            return r.synced > 0
              ? `${props.record} is synced${edits.length ? " with your edits" : ""}.`
              : `${props.record} failed again; see its new answer.`;
          });
        }}
      >
        {v.fields.map((x) => (
          <label key={x.name} className={problems[x.name] ? "bad" : ""}>
            <span>
              {x.name}
              {x.required && " *"}
            </span>
            <input
              data-field={x.name}
              readOnly={x.key}
              value={values[x.name] ?? x.value}
              onChange={(e) => setValues({ ...values, [x.name]: e.target.value })}
            />
            {problems[x.name]?.map((m, i) => (
              <small key={i} className="errors">
                {m}
              </small>
            ))}
          </label>
        ))}
        {problems[""]?.map((m, i) => (
          <p key={i} className="errors">
            {m}
          </p>
        ))}
        <button type="submit" className="primary" disabled={props.busy || bad} data-action="retry">
          {props.busy ? "Retrying…" : edits.length ? `Retry with ${edits.length} ${edits.length === 1 ? "edit" : "edits"}` : "Retry as it is"}
        </button>
      </form>
      <Reason
        label="Discard"
        busy={props.busy}
        onGo={(reason) =>
          void props.act(async () => {
            await backend.discard(target, reason);
            return `${props.record} discarded: ${reason}`;
          })
        }
      />
    </div>
  );
}

/** A discard: it needs a reason staff can read later in the run history. */
function Reason(props: { label: string; busy: boolean; onGo(reason: string): void }) {
  const [reason, setReason] = useState("");
  return (
    <form
      className="discard"
      onSubmit={(e) => {
        e.preventDefault();
        if (reason.trim()) props.onGo(reason.trim());
      }}
    >
      <input aria-label={`${props.label}: reason`} placeholder="Why (kept in the run history)" value={reason} onChange={(e) => setReason(e.target.value)} />
      <button type="submit" disabled={props.busy || !reason.trim()}>
        {props.label}
      </button>
    </form>
  );
}
