//! Mapping profiles: a TOML file that maps a source's headers onto canonical columns.
//!
//! ```toml
//! type = "episode"          # optional: the entity type of the files
//! [columns]
//! "Program Title" = "title"
//! "Ep #" = "ordinal"
//! ```

use crate::schema::{header_token, is_canonical_column, EntityType};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    #[serde(rename = "type")]
    pub entity_type: Option<EntityType>,
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("mapping file {path}: cannot read it: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mapping file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("mapping file {path}: \"{header}\" maps to \"{target}\", which is not a column of any entity type")]
    UnknownTarget {
        path: PathBuf,
        header: String,
        target: String,
    },
}

impl Mapping {
    pub fn load(path: &Path) -> Result<Self, MappingError> {
        let text = std::fs::read_to_string(path).map_err(|source| MappingError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, MappingError> {
        let mapping: Mapping = toml::from_str(text).map_err(|e| MappingError::Parse {
            path: path.to_owned(),
            message: e.message().to_string(),
        })?;
        for (header, target) in &mapping.columns {
            if !is_canonical_column(target) {
                return Err(MappingError::UnknownTarget {
                    path: path.to_owned(),
                    header: header.clone(),
                    target: target.clone(),
                });
            }
        }
        Ok(mapping)
    }

    /// The canonical column a header maps to through this profile, if any.
    pub fn target(&self, header: &str) -> Option<&str> {
        let token = header_token(header);
        self.columns
            .iter()
            .find(|(from, _)| header_token(from) == token)
            .map(|(_, to)| to.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_headers_loosely_and_rejects_unknown_targets() {
        let m = Mapping::parse(
            Path::new("m.toml"),
            "type = \"episode\"\n[columns]\n\"Program Title\" = \"title\"\n",
        );
        let m = m.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.entity_type, Some(EntityType::Episode));
        assert_eq!(m.target("program_title"), Some("title"));
        assert_eq!(m.target("Title"), None);
        let bad = Mapping::parse(Path::new("m.toml"), "[columns]\n\"X\" = \"nope\"\n");
        assert!(matches!(bad, Err(MappingError::UnknownTarget { .. })));
        let bad = Mapping::parse(Path::new("m.toml"), "colums = 1\n");
        assert!(bad.is_err_and(|e| e.to_string().contains("m.toml")));
    }
}
