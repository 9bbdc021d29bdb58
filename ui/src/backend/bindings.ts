// Generated from the Rust types in src-tauri/crates/runtime/src/{workbench,settings,
// operations}.rs by `make bindings`; `make test` fails when this file is stale.
// Do not edit.

export type FileSummary = { id: number, name: string, path: string, entity_type: string | null, encoding: string, delimiter: string, header: Array<string>, 
/**
 * Rows readable now (all once indexed).
 */
rows: number, valid: number, invalid: number, warnings: number, blank_rows: number, counts: Array<CodeCount>, file_findings: Array<FindingView>, unusable: string | null, 
/**
 * A validation pass is running over it.
 */
checking: boolean, edited_cells: number, can_undo: boolean, 
/**
 * The saved mapping profile applied to this file, if any.
 */
mapping_profile: string | null, 
/**
 * Columns no field matches, a required column missing, or no usable header: the
 * mapping editor can help.
 */
needs_mapping: boolean, 
/**
 * Every row has been read (edits, saves and bulk fixes wait for it).
 */
indexed: boolean, };

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

export type MappingView = { 
/**
 * Detected, or named by the profile; `None` when the header says nothing.
 */
entity_type: string | null, columns: Array<MappingColumn>, 
/**
 * Every type's fields (the editor follows the type chosen or detected).
 */
types: Array<TypeFields>, 
/**
 * Required fields of the detected type no column maps to.
 */
unmapped_required: Array<string>, profile: string | null, };

export type MappingColumn = { index: number, header: string, 
/**
 * The first row's value, to recognise the column by.
 */
sample: string, mapped: string | null, candidates: Array<MappingCandidate>, };

export type MappingCandidate = { field: string, 
/**
 * 0 to 1.
 */
score: number, };

export type TypeFields = { entity_type: string, 
/**
 * Its key column: mapping a column to it says what the rows are.
 */
key: string, fields: Array<FieldInfo>, };

export type FieldInfo = { name: string, required: boolean, };

export type MappingRequest = { entity_type: string | null, columns: Array<MappingChoice>, };

export type MappingChoice = { column: number, 
/**
 * `None`: the column is ignored.
 */
field: string | null, };

export type SettingsError = { message: string, field: string | null, };

export type SettingsView = { 
/**
 * The file the profiles live in (written by Save).
 */
path: string, exists: boolean, profiles: Array<ProfileSummary>, 
/**
 * Why the file as a whole cannot be read, as the CLI says it.
 */
problem: string | null, };

export type ProfileSummary = { name: string, production: boolean, 
/**
 * `local` or `aws`.
 */
backend: string, 
/**
 * The target's URL, when the profile has one.
 */
target: string | null, 
/**
 * Why the CLI would refuse the profile.
 */
problem: string | null, };

export type BackendChoice = "local" | "aws";

export type DialectChoice = "media_manager" | "rest";

export type ProfileForm = { name: string, production: boolean, backend: BackendChoice, data_dir: string, region: string, endpoint_url: string, aws_profile: string, bucket: string, table: string, queue_prefix: string, kms_key_id: string, max_receive_count: string, target: TargetForm | null, };

export type TargetForm = { dialect: DialectChoice, 
/**
 * Media Manager only: `station` (the default) or `pbs`; empty for the default.
 */
access: string, url: string, token_url: string, quota: string, burst: string, concurrency: string, timeout_seconds: string, max_retries: string, base_delay_seconds: string, };

export type CredentialsView = { target: boolean, aws: boolean, 
/**
 * Why the keychain could not be asked.
 */
problem: string | null, };

export type CredentialKind = "target" | "aws";

export type CheckLine = { ok: boolean, 
/**
 * `target`, `bucket`, `queue`, `table`, `database`, …
 */
what: string, detail: string, };

export type ConnectionReport = { profile: string, production: boolean, 
/**
 * `None`: the profile has no target.
 */
target: CheckLine | null, backend: Array<CheckLine>, };

export type ActiveProfile = { 
/**
 * `None`: the embedded default.
 */
name: string | null, 
/**
 * "profile staging [PRODUCTION]", or "the embedded default".
 */
label: string, production: boolean, };

export type PlanScreen = { 
/**
 * "profile staging [PRODUCTION]", or "the embedded default".
 */
profile: string, production: boolean, counts: PlanCountsView, 
/**
 * New, changed, blocked, looked-up and unwritable records (never unchanged or
 * rejected ones), at most [`PLAN_RECORDS_SHOWN`].
 */
records: Array<PlanRow>, truncated: boolean, };

export type PlanCountsView = { rows: number, new: number, changed: number, unchanged: number, blocked: number, rejected: number, 
/**
 * Looked up and recorded, never written (a station's shows).
 */
resolve: number, 
/**
 * Changed, but the profile's access may not write them.
 */
not_writable: number, };

export type PlanRow = { 
/**
 * `show`, `season`, `episode` or `asset`.
 */
entity: string, key: string, 
/**
 * `new`, `changed`, `blocked`, `resolve` or `not_writable`.
 */
action: string, 
/**
 * Field by field, old → new (changed records).
 */
diff: Array<FieldDiff>, 
/**
 * The parent a blocked record waits for, as `type#key`.
 */
blocked_by: string | null, };

export type FieldDiff = { field: string, old: string | null, new: string | null, };
