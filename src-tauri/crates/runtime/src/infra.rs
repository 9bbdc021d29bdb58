//! A profile's backend resources: created (idempotently), removed, or only looked at.
//! The CLI's `infra up|down|check` and the settings screen's connection test call this.

use crate::env::{aws_clients, local_dir, Chosen, RuntimeError};
pub use metasync_aws::infra::{Action, Change};
use metasync_engine::config::{AwsProfile, BackendProfile};
use std::path::Path;

/// What to do to the resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfraAction {
    /// Create what is missing; what exists is kept.
    Up,
    /// Delete them, with everything they hold.
    Down,
    /// Say what exists; change nothing.
    Check,
}

/// Run `action` on the chosen profile's backend: the bucket, queues and table of an
/// aws profile, the database and object folder of a local one.
/// Errors start with the profile's label ("profile staging: …").
pub async fn infra(chosen: &Chosen, action: InfraAction) -> Result<Vec<Change>, RuntimeError> {
    let done = match &chosen.backend {
        BackendProfile::Local {
            data_dir,
            max_receive_count,
        } => local(data_dir.as_deref(), *max_receive_count, action),
        BackendProfile::Aws(profile) => aws(chosen, profile, action).await,
    };
    done.map_err(|e| match e {
        RuntimeError::Unusable(m) => RuntimeError::Unusable(format!("{}: {m}", chosen.label)),
        RuntimeError::Failed(m) => RuntimeError::Failed(format!("{}: {m}", chosen.label)),
    })
}

async fn aws(
    chosen: &Chosen,
    profile: &AwsProfile,
    action: InfraAction,
) -> Result<Vec<Change>, RuntimeError> {
    let clients = aws_clients(chosen.name.as_deref(), profile).await?;
    let done = match action {
        InfraAction::Up => metasync_aws::infra::up(&clients, profile).await,
        InfraAction::Down => metasync_aws::infra::down(&clients, profile).await,
        InfraAction::Check => metasync_aws::infra::check(&clients, profile).await,
    };
    done.map_err(RuntimeError::failed)
}

/// Whether a resource `check` found absent must be made before use: the embedded
/// backend makes its own on first use; an aws profile's need `infra up`.
pub fn made_on_first_use(chosen: &Chosen) -> bool {
    matches!(chosen.backend, BackendProfile::Local { .. })
}

fn local(
    data_dir: Option<&Path>,
    max_receive_count: u32,
    action: InfraAction,
) -> Result<Vec<Change>, RuntimeError> {
    let dir = local_dir(data_dir)?;
    let db = dir.join("metasync.db");
    let objects = dir.join("objects");
    let existed = (db.exists(), objects.exists());
    let change = |kind, path: &Path, action| Change {
        kind,
        name: path.display().to_string(),
        action,
    };
    let verdict: fn(bool) -> Action = match action {
        InfraAction::Down => {
            metasync_local::destroy(&dir).map_err(|e| {
                RuntimeError::failed(format!("cannot remove {}: {e}", dir.display()))
            })?;
            |was| if was { Action::Deleted } else { Action::Absent }
        }
        InfraAction::Up => {
            metasync_local::open(&dir, metasync_local::QueueSettings { max_receive_count })
                .map_err(RuntimeError::failed)?;
            |was| if was { Action::Exists } else { Action::Created }
        }
        InfraAction::Check => |was| if was { Action::Exists } else { Action::Absent },
    };
    Ok(vec![
        change("database", &db, verdict(existed.0)),
        change("objects", &objects, verdict(existed.1)),
    ])
}
