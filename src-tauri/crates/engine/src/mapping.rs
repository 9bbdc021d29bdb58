//! Mapping profiles: a TOML file that maps a source's headers onto canonical columns.
//!
//! ```toml
//! type = "episode"          # optional: the entity type of the files
//! [columns]
//! "Program Title" = "title"
//! "Ep #" = "ordinal"
//! ```

use crate::schema::{detect_type, header_token, is_canonical_column, EntityType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
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

impl Mapping {
    /// The profile as the TOML `validate --mapping` reads.
    pub fn to_toml(&self) -> String {
        let mut out = String::from(
            "# A Metasync mapping profile: your export's headers → Metasync's columns.\n",
        );
        out.push_str(&toml::to_string(self).unwrap_or_default());
        out
    }
}

/// A name for a header set, the same whatever the columns' order or spelling (case,
/// spaces, hyphens): how a saved profile is found again when the same export returns.
pub fn header_set_key(header: &[String]) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut tokens: Vec<String> = header
        .iter()
        .map(|h| header_token(h))
        .filter(|t| !t.is_empty())
        .collect();
    tokens.sort();
    tokens.dedup();
    let mut h = foldhash::fast::FixedState::with_seed(0x6d61).build_hasher();
    for t in &tokens {
        h.write(t.as_bytes());
        h.write_u8(0);
    }
    format!("{:016x}", h.finish())
}

/// A canonical field a source column may mean, with how alike their names are (0–1).
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub field: &'static str,
    pub score: f64,
}

/// One source column in the mapping editor.
#[derive(Debug, Clone)]
pub struct ColumnMatch {
    pub header: String,
    /// The field it maps to now: by name, or through the profile given.
    pub mapped: Option<String>,
    /// Fields of the type it may mean, best first (at most [`MAX_CANDIDATES`]).
    pub candidates: Vec<Candidate>,
}

/// Candidates listed per column.
pub const MAX_CANDIDATES: usize = 5;
/// Below this a name is not suggested.
pub const MIN_SCORE: f64 = 0.3;

/// Words exports use for Metasync's fields.
const SYNONYMS: &[(&str, &str)] = &[
    ("name", "title"),
    ("programtitle", "title"),
    ("showtitle", "title"),
    ("episodetitle", "title"),
    ("ep", "ordinal"),
    ("ep#", "ordinal"),
    ("episode#", "ordinal"),
    ("episodenumber", "ordinal"),
    ("seasonnumber", "ordinal"),
    ("number", "ordinal"),
    ("no", "ordinal"),
    ("#", "ordinal"),
    ("airdate", "premiered_on"),
    ("premiere", "premiered_on"),
    ("premieredate", "premiered_on"),
    ("firstaired", "premiered_on"),
    ("summary", "description_short"),
    ("shortdescription", "description_short"),
    ("synopsis", "description_long"),
    ("longdescription", "description_long"),
    ("description", "description_long"),
    ("lang", "language"),
    ("id", "episode_key"),
    ("url", "slug"),
];

/// Character bigrams' Dice coefficient of two header tokens.
fn dice(a: &str, b: &str) -> f64 {
    let grams = |s: &str| -> Vec<(char, char)> {
        let c: Vec<char> = s.chars().collect();
        c.windows(2).map(|w| (w[0], w[1])).collect()
    };
    let (ga, mut gb) = (grams(a), grams(b));
    if ga.is_empty() || gb.is_empty() {
        return if a == b { 1.0 } else { 0.0 };
    }
    let total = ga.len() + gb.len();
    let mut common = 0;
    for g in ga {
        if let Some(i) = gb.iter().position(|x| *x == g) {
            gb.swap_remove(i);
            common += 1;
        }
    }
    2.0 * f64::from(common) / total as f64
}

/// How alike a source header and a canonical field are.
pub fn similarity(header: &str, field: &str) -> f64 {
    let (h, f) = (header_token(header), header_token(field));
    if h == f {
        return 1.0;
    }
    if SYNONYMS.iter().any(|&(from, to)| from == h && to == field) {
        return 0.95;
    }
    let mut score = dice(&h, &f);
    // "Show Key" → "show_key" is exact; "Season ID" for "season_key" shares the stem.
    if !h.is_empty() && (f.contains(&h) || h.contains(&f)) {
        score = score.max(0.8);
    }
    score
}

/// What the mapping editor shows for a header: each column's current target and the
/// fields it may mean, for the type detected (or given, or named by the profile).
pub fn suggest(
    header: &[String],
    entity_type: Option<EntityType>,
    profile: Option<&Mapping>,
) -> (Option<EntityType>, Vec<ColumnMatch>) {
    let direct = |h: &str| -> Option<String> {
        if let Some(t) = profile.and_then(|m| m.target(h)) {
            return Some(t.to_string());
        }
        let token = header_token(h);
        EntityType::ALL
            .iter()
            .flat_map(|t| t.fields())
            .find(|f| header_token(f.name) == token)
            .map(|f| f.name.to_string())
    };
    let mapped: Vec<Option<String>> = header.iter().map(|h| direct(h)).collect();
    let entity_type = entity_type
        .or_else(|| profile.and_then(|m| m.entity_type))
        .or_else(|| detect_type(mapped.iter().flatten().map(String::as_str)));
    let types: Vec<EntityType> = match entity_type {
        Some(t) => vec![t],
        None => EntityType::ALL.to_vec(),
    };
    let columns = header
        .iter()
        .zip(mapped)
        .map(|(h, mapped)| {
            let mut candidates: Vec<Candidate> = Vec::new();
            for f in types.iter().flat_map(|t| t.fields()) {
                let score = similarity(h, f.name);
                if score >= MIN_SCORE && !candidates.iter().any(|c| c.field == f.name) {
                    candidates.push(Candidate {
                        field: f.name,
                        score,
                    });
                }
            }
            candidates.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.field.cmp(b.field)));
            candidates.truncate(MAX_CANDIDATES);
            ColumnMatch {
                header: h.clone(),
                mapped,
                candidates,
            }
        })
        .collect();
    (entity_type, columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_rank_the_likely_field_first() {
        let header: Vec<String> = [
            "Episode Key",
            "Season ID",
            "Ep #",
            "Program Title",
            "Air Date",
            "Notes",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (t, cols) = suggest(&header, None, None);
        assert_eq!(t, Some(EntityType::Episode));
        assert_eq!(cols[0].mapped.as_deref(), Some("episode_key"));
        assert_eq!(cols[1].mapped, None);
        assert_eq!(cols[1].candidates[0].field, "season_key");
        assert_eq!(cols[2].candidates[0].field, "ordinal");
        assert_eq!(cols[3].candidates[0].field, "title");
        assert_eq!(cols[4].candidates[0].field, "premiered_on");
        assert!(
            cols[5].candidates.iter().all(|c| c.score < 0.8),
            "{:?}",
            cols[5]
        );
        // A saved profile is what the editor shows next time.
        let m = Mapping {
            entity_type: Some(EntityType::Episode),
            columns: [("Season ID".to_string(), "season_key".to_string())].into(),
        };
        let (_, cols) = suggest(&header, None, Some(&m));
        assert_eq!(cols[1].mapped.as_deref(), Some("season_key"));
    }

    #[test]
    fn a_profile_round_trips_through_its_toml() {
        let m = Mapping {
            entity_type: Some(EntityType::Episode),
            columns: [
                ("Ep #".to_string(), "ordinal".to_string()),
                ("Program \"Title\"".to_string(), "title".to_string()),
            ]
            .into(),
        };
        let text = m.to_toml();
        let back =
            Mapping::parse(Path::new("m.toml"), &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, m);
        assert!(text.contains("type = \"episode\""), "{text}");
    }

    #[test]
    fn the_header_set_key_ignores_order_and_spelling() {
        let a: Vec<String> = ["Ep #", "Program Title"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let b: Vec<String> = ["program_title", "EP #"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let c: Vec<String> = ["Ep #", "Title"].iter().map(|s| s.to_string()).collect();
        assert_eq!(header_set_key(&a), header_set_key(&b));
        assert_ne!(header_set_key(&a), header_set_key(&c));
    }

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
