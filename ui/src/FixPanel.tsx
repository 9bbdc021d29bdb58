// Bulk fixes: pick the cells (a column, or what a finding code points at) and the fix,
// see how many cells change and a few examples, then apply (one undo step).
import { useState } from "react";
import { backend, type FileSummary, type FixArg, type FixPreviewView, type ScopeArg } from "./backend";
import { fixArg, FIXES, type FixKind } from "./fixes";
import { viewLabel } from "./labels";

export function FixPanel(props: { file: FileSummary; onDone(): void; onMessage(m: string | null): void }) {
  const { file } = props;
  const [column, setColumn] = useState<string>("");
  const [code, setCode] = useState<string>("");
  const [kind, setKind] = useState<FixKind>("trim");
  const [a, setA] = useState("");
  const [b, setB] = useState("");
  const [preview, setPreview] = useState<FixPreviewView | null>(null);

  const scope: ScopeArg = { column: column === "" ? null : Number(column), code: code === "" ? null : code };
  const fix: FixArg = fixArg(kind, a, b);
  const reset = () => setPreview(null);
  const fail = (e: unknown) => props.onMessage(String(e));

  return (
    <section className="fix-panel" aria-label="Bulk fix">
      <h3>Fix many cells</h3>
      <label>
        Column
        <select aria-label="Fix column" value={column} onChange={(e) => (setColumn(e.target.value), reset())}>
          <option value="">(any, with the finding)</option>
          {file.header.map((h, i) => (
            <option key={i} value={i}>
              {h}
            </option>
          ))}
        </select>
      </label>
      <label>
        Only cells with
        <select aria-label="Fix finding" value={code} onChange={(e) => (setCode(e.target.value), reset())}>
          <option value="">(every cell of the column)</option>
          {file.counts.map((c) => (
            <option key={c.code} value={c.code}>
              {viewLabel(c.code)}
            </option>
          ))}
        </select>
      </label>
      <label>
        Fix
        <select aria-label="Fix kind" value={kind} onChange={(e) => (setKind(e.target.value as FixKind), reset())}>
          {FIXES.map((f) => (
            <option key={f.kind} value={f.kind}>
              {f.label}
            </option>
          ))}
        </select>
      </label>
      {(kind === "replace" || kind === "set") && (
        <input aria-label={kind === "replace" ? "Find" : "Value"} placeholder={kind === "replace" ? "find" : "value"} value={a} onChange={(e) => (setA(e.target.value), reset())} />
      )}
      {kind === "replace" && <input aria-label="Replace with" placeholder="replace with" value={b} onChange={(e) => (setB(e.target.value), reset())} />}
      <div className="fix-actions">
        <button onClick={() => void backend.previewFix(file.id, fix, scope).then(setPreview, fail)}>Preview</button>
        <button
          disabled={!preview || preview.cells === 0}
          onClick={() =>
            void backend.applyFix(file.id, fix, scope).then((n) => {
              props.onMessage(`${n.toLocaleString("en-US")} cells changed. Undo reverts them.`);
              setPreview(null);
              props.onDone();
            }, fail)
          }
        >
          Apply
        </button>
      </div>
      {preview && (
        <div className="fix-preview" data-testid="fix-preview">
          <b>{preview.cells.toLocaleString("en-US")}</b> cells will change
          <ul>
            {preview.samples.map((s, i) => (
              <li key={i}>
                row {(s.row + 1).toLocaleString("en-US")}: <code>{s.before || "(empty)"}</code> → <code>{s.after}</code>
              </li>
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}
