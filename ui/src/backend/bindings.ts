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

export type SyncForm = { 
/**
 * Records per queue message (1 to 100).
 */
batch_size: number, 
/**
 * Send only the top N records (a trial run).
 */
limit: number | null, 
/**
 * Rank by this column, highest first, before taking the top N.
 */
rank_by: string | null, 
/**
 * On a production profile, its name typed again.
 */
confirm: string | null, };

export type TypeProgress = { entity: string, enqueued: number, synced: number, unchanged: number, failed: number, };

export type SyncUpdate = { 
/**
 * `planning`, `landing`, `enqueueing`, `working`, `resuming` or `done`.
 */
stage: string, profile: string, types: Array<TypeProgress>, 
/**
 * Records resolved of those sent.
 */
resolved: number, total: number, throttled: number, 
/**
 * Records resolved per second since the workers started.
 */
rate_per_second: number, eta_seconds: number | null, elapsed_ms: number, cancelling: boolean, };

export type SyncDone = { profile: string, run_id: string, rows: number, synced: number, unchanged: number, rejected: number, failed: number, discarded: number, 
/**
 * Never enqueued (the limit, or a cancel).
 */
not_sent: number, 
/**
 * Enqueued and not resolved: they wait in the queues (Resume sends them).
 */
queued: number, cancelled: boolean, throttled: number, elapsed_ms: number, latency_p50_ms: number | null, latency_p95_ms: number | null, per_type: Array<TypeProgress>, };

export type Interrupted = { 
/**
 * `None`: the embedded default.
 */
profile: string | null, 
/**
 * The file the profile was read from.
 */
config: string, started_at_ms: number, };

export type DashboardView = { profile: string, production: boolean, 
/**
 * When the queues were read.
 */
at_ms: number, queues: Array<QueueRow>, 
/**
 * Failures in triage by error code (as `status` shows them).
 */
failures: { [key in string]: number }, 
/**
 * Depth samples of the last hour, oldest first.
 */
depth: Array<DepthSample>, 
/**
 * What workers on this desktop did per minute in the last hour, all types
 * (minutes with nothing left out).
 */
minutes: Array<MinuteRow>, 
/**
 * The target's latency in the latest sync run that called it.
 */
latency_p50_ms: number | null, latency_p95_ms: number | null, 
/**
 * Per type: throughput and 429s, and the latest sync's latency.
 */
per_type: Array<TypeStats>, runs: Array<RunView>, 
/**
 * Set when the dead letters grew since the last look: the desktop notifies.
 */
alert: string | null, 
/**
 * A sync the app did not see end, waiting to be resumed.
 */
interrupted: Interrupted | null, };

export type QueueRow = { entity: string, visible: number, in_flight: number, dead: number, };

export type DepthSample = { t: number, 
/**
 * Visible, in flight and dead, per type in show, season, episode, asset order.
 */
depth: Array<[number, number, number]>, };

export type MinuteRow = { 
/**
 * The minute's start.
 */
t: number, synced: number, failed: number, throttled: number, };

export type TypeStats = { entity: string, 
/**
 * The busiest of the last hour's minutes, and the hour's totals.
 */
synced_per_minute: number, throttled_per_minute: number, synced_last_hour: number, throttled_last_hour: number, latency_p50_ms: number | null, latency_p95_ms: number | null, };

export type RunView = { id: string, 
/**
 * `sync` or `triage`.
 */
kind: string, profile: string, note: string | null, who: string, started_at_ms: number, finished_at_ms: number | null, 
/**
 * sha256 of each file (records acted on, for a triage action).
 */
files: Array<string>, counts: { [key in string]: number }, };

export type FailureGroupView = { code: string, count: number, 
/**
 * The target's answer of one of them.
 */
sample: string, 
/**
 * Up to 20 of them, as `type#key`.
 */
records: Array<string>, };

export type FailureView = { 
/**
 * `type#key`.
 */
record: string, entity: string, key: string, 
/**
 * `failed`, or where it ended since (`synced`, `discarded`, `pending`).
 */
status: string, code: string, 
/**
 * The target's answer, or what went wrong.
 */
message: string, attempts: number, target_id: string | null, run_id: string | null, updated_at_ms: number, 
/**
 * Every field of the type, in the type's order, with the record's value.
 */
fields: Array<FieldValue>, };

export type FieldValue = { name: string, value: string, required: boolean, 
/**
 * The key column: it names the record and cannot be edited here.
 */
key: boolean, };

export type FieldEdit = { field: string, value: string, };

export type FieldProblem = { field: string | null, message: string, hint: string, };

export type TriageTarget = { "kind": "record", record: string, } | { "kind": "code", code: string, };

export type TriageDone = { action: string, 
/**
 * The triage run that records it.
 */
run_id: string, records: Array<string>, 
/**
 * After a retry, how the retried records ended once the queues drained.
 */
synced: number, failed: number, };

export type LogLine = { timestamp: string, 
/**
 * `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
 */
level: string, message: string, run_id: string | null, 
/**
 * The event's other fields, `name=value`.
 */
fields: Array<string>, 
/**
 * The line as the file has it.
 */
raw: string, };

export type RunDetail = { run: RunView, 
/**
 * Records by where they stand now.
 */
by_outcome: { [key in string]: number }, records: Array<RunRecord>, truncated: boolean, };

export type RunRecord = { 
/**
 * `type#key`.
 */
record: string, 
/**
 * `synced`, `unchanged` (synced before with this content, nothing to send),
 * `failed`, `discarded`, `queued` (picked up, not resolved yet), `changed since` (a
 * later run or triage action wrote it), or `not sent or queued`.
 */
outcome: string, code: string | null, message: string | null, target_id: string | null, };
