// Staff-facing names of finding codes.
const LABELS: Record<string, string> = {
  required: "Missing value",
  too_long: "Too long",
  bad_format: "Wrong format",
  bad_enum: "Not an allowed value",
  bad_date: "Bad date",
  bad_range: "Out of range",
  duplicate_key: "Duplicate",
  duplicate_ordinal: "Duplicate ordinal",
  duplicate_full_length: "Second full-length",
  ragged_row: "Wrong number of cells",
  parent_unknown: "Parent not in these files",
  parent_invalid: "Parent row is broken",
  rule: "Rule",
  bad_encoding: "Bad characters",
  unknown_column: "Unknown column",
  duplicate_column: "Duplicate column",
  no_rows: "No rows",
  blank_rows: "Blank rows",
};

export function viewLabel(code: string): string {
  return LABELS[code] ?? code;
}
