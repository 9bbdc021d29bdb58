// Generated from the Rust types in src-tauri/crates/runtime/src/workbench.rs by
// `make bindings`; `make test` fails when this file is stale. Do not edit.

export type FileSummary = { id: number, name: string, path: string, entity_type: string | null, encoding: string, delimiter: string, header: Array<string>, 
/**
 * Rows readable now (all once indexed).
 */
rows: number, valid: number, invalid: number, warnings: number, blank_rows: number, counts: Array<CodeCount>, file_findings: Array<FindingView>, unusable: string | null, 
/**
 * A validation pass is running over it.
 */
checking: boolean, edited_cells: number, can_undo: boolean, };

export type CodeCount = { code: string, count: number, };

export type FindingView = { code: string, severity: string, 
/**
 * 0-based data row, as the grid counts.
 */
row: number | null, line: number | null, column: string | null, column_index: number | null, value: string | null, message: string, hint: string, };

export type FileProgress = { id: number, rows: number, bytes: number, size: number, };

export type WorkbenchEvent = { "kind": "progress", files: Array<FileProgress>, } | { "kind": "checked", files: Array<FileSummary>, } | { "kind": "failed", message: string, };

export type ViewArg = { "kind": "all" } | { "kind": "invalid" } | { "kind": "code", code: string, };

export type FixArg = { "kind": "replace", find: string, with: string, } | { "kind": "trim" } | { "kind": "set", value: string, } | { "kind": "fill_down" } | { "kind": "typography" } | { "kind": "us_date" } | { "kind": "slug_from_title" } | { "kind": "duration_seconds" };

export type ScopeArg = { column: number | null, code: string | null, };

export type FixPreviewView = { cells: number, samples: Array<FixSample>, };

export type FixSample = { row: number, column: number, before: string, after: string, };

export type SaveFormatArg = "original" | "utf8";

export type Saved = { path: string, bytes: number, };
