//! The operations room's work for the window, with no UI in it: the plan of the
//! workbench's open files — edits included — against the window's profile (nothing is
//! sent or written to the profile's stores); then, in the submodules, the sync with
//! its progress, the dashboard, triage and the run history, all through [`Desk`].

mod dashboard;
mod desk;
mod history;
#[cfg(test)]
mod room_tests;
mod runs;
mod sync;
mod triage;

pub use dashboard::{
    per_minute, DashboardView, DepthSample, MinuteRow, QueueRow, RunView, TypeStats, RUNS_SHOWN,
    SHOWN_MS,
};
pub use desk::{Desk, Places};
pub use history::{History, Line};
pub use runs::{records_csv, RunDetail, RunRecord, RUN_RECORDS_SHOWN};
pub use sync::{
    interrupted, Interrupted, SyncDone, SyncForm, SyncUpdate, TypeProgress, DEPTH_EVERY,
    UPDATE_EVERY,
};
pub use triage::{
    FailureGroupView, FailureView, FieldEdit, FieldProblem, FieldValue, TriageDone, TriageTarget,
};

use crate::env::RuntimeError;
use crate::ops::plan_with;
use crate::workbench::Workbench;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use ts_rs::TS;

/// Records listed by a plan at most (its counts stay exact).
pub const PLAN_RECORDS_SHOWN: usize = 2_000;

/// What a sync of the open files would do.
#[derive(Debug, Clone, Serialize, TS)]
pub struct PlanScreen {
    /// "profile staging [PRODUCTION]", or "the embedded default".
    pub profile: String,
    pub production: bool,
    pub counts: PlanCountsView,
    /// New, changed, blocked, looked-up and unwritable records (never unchanged or
    /// rejected ones), at most [`PLAN_RECORDS_SHOWN`].
    pub records: Vec<PlanRow>,
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct PlanCountsView {
    pub rows: u64,
    pub new: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub blocked: u64,
    pub rejected: u64,
    /// Looked up and recorded, never written (a station's shows).
    pub resolve: u64,
    /// Changed, but the profile's access may not write them.
    pub not_writable: u64,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct PlanRow {
    /// `show`, `season`, `episode` or `asset`.
    pub entity: String,
    pub key: String,
    /// `new`, `changed`, `blocked`, `resolve` or `not_writable`.
    pub action: String,
    /// Field by field, old → new (changed records).
    pub diff: Vec<FieldDiff>,
    /// The parent a blocked record waits for, as `type#key`.
    pub blocked_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct FieldDiff {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// This process's scratch folder for corrected copies: in the user's cache folder
/// (`~/.cache/metasync` on Linux), private to the user, one per process. The desktop
/// removes it when it exits; [`plan_open_files`] removes each plan's copies as it ends.
pub fn scratch_root() -> PathBuf {
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("metasync")
        .join(format!("scratch-{}", std::process::id()))
}

/// A new folder under `root` only this user can read (plans may run at once).
pub(crate) fn private_dir(root: &Path) -> std::io::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = root.join(NEXT.fetch_add(1, Ordering::Relaxed).to_string());
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&dir)?;
    Ok(dir)
}

impl Desk {
    /// The workbench's open files as a sync reads them: an unedited file where it is,
    /// an edited one saved corrected in a new private folder under the scratch folder
    /// (returned first: the caller removes it), with the per-file validation options.
    pub(crate) async fn open_files_as_inputs(
        &self,
        wb: Arc<Workbench>,
    ) -> Result<(PathBuf, Vec<PathBuf>, metasync_engine::validate::Options), RuntimeError> {
        let root = self.places.scratch.clone();
        tokio::task::spawn_blocking(move || {
            let dir = private_dir(&root).map_err(|e| {
                RuntimeError::Failed(format!("cannot make a folder in {}: {e}", root.display()))
            })?;
            match wb.sync_inputs(&dir) {
                Ok((files, validate)) => Ok((dir, files, validate)),
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    Err(RuntimeError::unusable(e))
                }
            }
        })
        .await
        .map_err(RuntimeError::failed)?
    }

    /// Plan the open files against the window's profile. Edited files are read
    /// corrected (copies in a folder of their own under the scratch folder, removed
    /// when the plan ends); the profile's stores are opened (an embedded one is made
    /// if missing) and nothing is written to them.
    pub async fn plan_open_files(&self, wb: Arc<Workbench>) -> Result<PlanScreen, RuntimeError> {
        let chosen = self.chosen().await?;
        let (dir, files, validate) = self.open_files_as_inputs(wb).await?;
        let planned = async {
            let env = self.open(chosen.clone()).await?;
            plan_with(&env, &files, validate, PLAN_RECORDS_SHOWN).await
        }
        .await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(screen(&chosen, planned?))
    }
}

fn screen(chosen: &crate::env::Chosen, view: crate::ops::PlanView) -> PlanScreen {
    let c = view.counts;
    PlanScreen {
        profile: chosen.label.clone(),
        production: chosen.production,
        counts: PlanCountsView {
            rows: c.rows,
            new: c.new,
            changed: c.changed,
            unchanged: c.unchanged,
            blocked: c.blocked,
            rejected: c.rejected,
            resolve: c.resolve,
            not_writable: c.not_writable,
        },
        records: view
            .records
            .into_iter()
            .map(|r| PlanRow {
                entity: r.entity.as_str().to_string(),
                key: r.key,
                action: serde_json::to_value(r.action)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                diff: r
                    .diff
                    .into_iter()
                    .map(|d| FieldDiff {
                        field: d.field,
                        old: d.old,
                        new: d.new,
                    })
                    .collect(),
                blocked_by: r.blocked_by,
            })
            .collect(),
        truncated: view.records_truncated,
    }
}

/// The TypeScript declarations of the types above (see `workbench::typescript_bindings`).
pub fn typescript_decls(cfg: &ts_rs::Config) -> Vec<String> {
    vec![
        PlanScreen::decl(cfg),
        PlanCountsView::decl(cfg),
        PlanRow::decl(cfg),
        FieldDiff::decl(cfg),
        SyncForm::decl(cfg),
        TypeProgress::decl(cfg),
        SyncUpdate::decl(cfg),
        SyncDone::decl(cfg),
        Interrupted::decl(cfg),
        DashboardView::decl(cfg),
        QueueRow::decl(cfg),
        DepthSample::decl(cfg),
        MinuteRow::decl(cfg),
        TypeStats::decl(cfg),
        RunView::decl(cfg),
        FailureGroupView::decl(cfg),
        FailureView::decl(cfg),
        FieldValue::decl(cfg),
        FieldEdit::decl(cfg),
        FieldProblem::decl(cfg),
        TriageTarget::decl(cfg),
        TriageDone::decl(cfg),
        crate::logging::LogLine::decl(cfg),
        RunDetail::decl(cfg),
        RunRecord::decl(cfg),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Profiles;

    const SHOWS: &str = "show_key,slug,title,audience,station,language\r\n\
        SH1,nova,NOVA,national,,en\r\n\
        SH2,frontline,Frontline,national,,en\r\n";

    /// A plan reads the edits, never the original file, and writes nothing to it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_plan_of_the_open_files_reads_their_edits() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("shows.csv");
        std::fs::write(&file, SHOWS).expect("write");
        let config = dir.path().join("metasync.toml");
        let data = dir.path().join("data").display().to_string();
        std::fs::write(&config, format!("[profiles.desk]\ndata_dir = {data:?}\n")).expect("config");
        let profiles = Arc::new(Profiles::new(config));
        profiles.select(Some("desk")).expect("desk");
        let wb = Arc::new(Workbench::default());
        let opened = wb.open_paths(std::slice::from_ref(&file));
        let id = opened[0].as_ref().expect("opened").id;
        wb.wait();
        let scratch = dir.path().join("scratch");
        let desk = Desk::new(
            Arc::clone(&profiles),
            Places {
                scratch: scratch.clone(),
                state: dir.path().join("state"),
            },
        );

        let plan = desk.plan_open_files(Arc::clone(&wb)).await.expect("plan");
        assert_eq!(plan.profile, "profile desk");
        assert_eq!((plan.counts.rows, plan.counts.new), (2, 2));
        assert!(plan.records.iter().all(|r| r.action == "new"));

        // A slug staff broke in the window: the plan rejects that row, as a sync would.
        wb.edit(id, 1, 1, "Bad Slug".into()).expect("edit");
        wb.wait();
        let plan = desk.plan_open_files(Arc::clone(&wb)).await.expect("plan");
        assert_eq!((plan.counts.new, plan.counts.rejected), (1, 1));
        assert_eq!(std::fs::read_to_string(&file).expect("read"), SHOWS);
        assert_eq!(
            std::fs::read_dir(&scratch)
                .map(Iterator::count)
                .unwrap_or(0),
            0,
            "a plan's copies go when it ends"
        );

        // Another export with the same name, edited too: each copy keeps its own rows.
        let other = dir.path().join("b").join("shows.csv");
        std::fs::create_dir_all(other.parent().expect("parent")).expect("dir");
        std::fs::write(
            &other,
            SHOWS
                .replace("SH", "SX")
                .replace(",nova,", ",nova-b,")
                .replace(",frontline,", ",frontline-b,"),
        )
        .expect("write");
        let id_b = wb.open_paths(std::slice::from_ref(&other))[0]
            .as_ref()
            .expect("opened")
            .id;
        wb.wait();
        wb.edit(id_b, 0, 2, "NOVA B".into()).expect("edit");
        wb.wait();
        let plan = desk.plan_open_files(Arc::clone(&wb)).await.expect("plan");
        assert_eq!(
            (plan.counts.rows, plan.counts.new, plan.counts.rejected),
            (4, 3, 1)
        );
    }
}
