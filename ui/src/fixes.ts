// The bulk fixes the engine offers, as the panel lists them.
import type { FixArg } from "./backend";

export type FixKind = FixArg["kind"];

export const FIXES: { kind: FixKind; label: string }[] = [
  { kind: "trim", label: "Trim spaces" },
  { kind: "replace", label: "Find and replace" },
  { kind: "set", label: "Set a value" },
  { kind: "fill_down", label: "Fill empty cells from above" },
  { kind: "typography", label: "Plain quotes and dashes" },
  { kind: "us_date", label: "US dates to YYYY-MM-DD" },
  { kind: "slug_from_title", label: "Slug from the title" },
  { kind: "duration_seconds", label: "Durations to seconds" },
];

/** The fix the backend receives; `a` and `b` are the panel's two text fields. */
export function fixArg(kind: FixKind, a: string, b: string): FixArg {
  switch (kind) {
    case "replace":
      return { kind, find: a, with: b };
    case "set":
      return { kind, value: a };
    default:
      return { kind };
  }
}
