// The mapping editor's logic: what is chosen at first, and what is still missing.
import type { FieldInfo, MappingView } from "./backend";

/** Suggestions this alike or more are chosen at first; below, staff choose. */
export const PRESELECT_SCORE = 0.8;

/** Per source column: the field it maps to ("" to ignore it). */
export type Choices = Record<number, string>;

export function initialChoices(view: MappingView): Choices {
  const out: Choices = {};
  const taken = new Set<string>();
  for (const c of view.columns) {
    const top = c.candidates[0];
    const pick = c.mapped ?? (top && top.score >= PRESELECT_SCORE ? top.field : "");
    // One column per field: a later column does not take a field already chosen.
    out[c.index] = pick && !taken.has(pick) ? pick : "";
    if (out[c.index]) taken.add(out[c.index]);
  }
  return out;
}

/** The type the rows are: chosen, else the most specific key column mapped, else detected. */
export function currentType(view: MappingView, choices: Choices, chosenType: string): string | null {
  if (chosenType) return chosenType;
  const chosen = new Set(Object.values(choices).filter(Boolean));
  for (const t of ["asset", "episode", "season", "show"]) {
    const key = view.types.find((x) => x.entity_type === t)?.key;
    if (key && chosen.has(key)) return t;
  }
  return view.entity_type;
}

/** The fields the editor offers: the type's, or every type's while it is unknown. */
export function fieldsOf(view: MappingView, type: string | null): FieldInfo[] {
  const t = view.types.find((x) => x.entity_type === type);
  if (t) return t.fields;
  const all: FieldInfo[] = [];
  for (const x of view.types) for (const f of x.fields) if (!all.some((a) => a.name === f.name)) all.push({ ...f, required: false });
  return all;
}

/** Required fields that no column maps to; with no type yet, a key column is what is missing. */
export function missingRequired(view: MappingView, choices: Choices, type: string | null): string[] {
  const chosen = new Set(Object.values(choices).filter(Boolean));
  const t = view.types.find((x) => x.entity_type === type);
  if (!t) return ["a key column (" + view.types.map((x) => x.key).join(", ") + ")"];
  return t.fields.filter((f) => f.required && !chosen.has(f.name)).map((f) => f.name);
}

/** Fields chosen for more than one column. */
export function chosenTwice(choices: Choices): string[] {
  const seen = new Map<string, number>();
  for (const f of Object.values(choices)) if (f) seen.set(f, (seen.get(f) ?? 0) + 1);
  return [...seen].filter(([, n]) => n > 1).map(([f]) => f);
}

/** Whether the editor opens by itself: the file needs it and has no profile yet. */
export function opensByItself(file: { needs_mapping: boolean; mapping_profile: string | null; checking: boolean }): boolean {
  return file.needs_mapping && file.mapping_profile === null && !file.checking;
}
