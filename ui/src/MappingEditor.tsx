// The mapping editor: each source column beside the field it means, suggestions first
// (ranked by how alike the names are), the required fields still unmapped, and a save
// that writes the header set's profile (the TOML `validate --mapping` reads).
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { backend, type FileSummary } from "./backend";
import { chosenTwice, currentType, fieldsOf, initialChoices, missingRequired, type Choices } from "./mapping";

const TYPES = ["show", "season", "episode", "asset"];

export function MappingEditor(props: { file: FileSummary; onClose(): void; onSaved(path: string): void; onMessage(m: string): void }) {
  const { file } = props;
  const [entityType, setEntityType] = useState<string>("");
  const qc = useQueryClient();
  const view = useQuery({
    queryKey: ["mapping", file.id],
    queryFn: () => backend.mapping(file.id),
  });
  const [choices, setChoices] = useState<Choices | null>(null);
  useEffect(() => {
    if (view.data && choices === null) {
      setChoices(initialChoices(view.data));
    }
  }, [view.data, choices]);

  if (!view.data || !choices) return null;
  const v = view.data;
  const type = currentType(v, choices, entityType);
  const fields = fieldsOf(v, type);
  const missing = missingRequired(v, choices, type);
  const twice = chosenTwice(choices);
  const save = () =>
    backend
      .saveMapping(file.id, {
        entity_type: type,
        columns: v.columns.map((c) => ({ column: c.index, field: choices[c.index] || null })),
      })
      .then((path) => {
        // The next opening shows the saved profile, not these suggestions.
        void qc.invalidateQueries({ queryKey: ["mapping", file.id] });
        props.onSaved(path);
      }, (e) => props.onMessage(String(e)));

  return (
    <section className="mapping" role="dialog" aria-label="Map columns">
      <div>
        <h2>Map the columns of {file.name}</h2>
        <p>
          Each column of your export on the left; choose the Metasync column it holds. Saved as a mapping profile, it
          applies by itself the next time a file with these headers is opened.
        </p>
        <label>
          These rows are{" "}
          <select aria-label="Entity type" value={entityType} onChange={(e) => setEntityType(e.target.value)}>
            <option value="">{type ? `${type}s (from the key column)` : "(from the key column)"}</option>
            {TYPES.map((t) => (
              <option key={t} value={t}>
                {t}s
              </option>
            ))}
          </select>
        </label>
        <table>
          <thead>
            <tr>
              <th>Your column</th>
              <th>First value</th>
              <th>Metasync column</th>
            </tr>
          </thead>
          <tbody>
            {v.columns.map((c) => (
              <tr key={c.index} data-col={c.index}>
                <td>{c.header}</td>
                <td className="sample">{c.sample}</td>
                <td>
                  <select
                    aria-label={`Map ${c.header}`}
                    value={choices[c.index] ?? ""}
                    onChange={(e) => setChoices({ ...choices, [c.index]: e.target.value })}
                  >
                    <option value="">(ignore this column)</option>
                    {c.candidates.length > 0 && (
                      <optgroup label="Suggested">
                        {c.candidates.map((k) => (
                          <option key={k.field} value={k.field}>
                            {k.field} ({Math.round(k.score * 100)}% alike)
                          </option>
                        ))}
                      </optgroup>
                    )}
                    <optgroup label="All columns">
                      {fields
                        .filter((f) => !c.candidates.some((k) => k.field === f.name))
                        .map((f) => (
                          <option key={f.name} value={f.name}>
                            {f.name}
                            {f.required ? " (required)" : ""}
                          </option>
                        ))}
                    </optgroup>
                  </select>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {missing.length > 0 && (
          <p className="missing" data-testid="missing-required">
            Required and not mapped yet: {missing.join(", ")}
          </p>
        )}
        {twice.length > 0 && <p className="missing">Chosen for two columns: {twice.join(", ")}</p>}
        <div className="fix-actions">
          <button onClick={() => void save()} disabled={twice.length > 0}>
            Save mapping
          </button>
          <button onClick={props.onClose}>Close</button>
        </div>
      </div>
    </section>
  );
}
