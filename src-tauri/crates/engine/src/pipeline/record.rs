//! A valid row as the pipeline carries it: canonical field values, the content hash the
//! plan compares, its parent, and the identity the target can find it by again.

use crate::ports::RecordKey;
use crate::schema::{EntityType, Field, Kind};
use crate::target::{Attributes, Identity};
use crate::text::{check, civil_from_days, normalize_text, parse_duration, trim, Value};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// A record in canonical form: every non-empty field, normalized as the target gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanonicalRecord {
    #[serde(rename = "type")]
    pub entity: EntityType,
    pub key: String,
    /// Field name → canonical value. Key columns included (the silver layer keeps them).
    pub fields: BTreeMap<String, String>,
}

/// One field that differs between the synced record and the new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

impl CanonicalRecord {
    /// Build from a row's cells: `columns` pairs each canonical field with its cell.
    /// Cells were validated, so a value that does not parse is kept as trimmed text.
    pub fn from_cells<'a>(
        entity: EntityType,
        cells: impl IntoIterator<Item = (&'static Field, &'a str)>,
    ) -> Self {
        let mut fields = BTreeMap::new();
        for (field, raw) in cells {
            if let Some(v) = canonical_value(field, raw) {
                fields.insert(field.name.to_string(), v);
            }
        }
        let key = fields.get(entity.key_column()).cloned().unwrap_or_default();
        Self {
            entity,
            key,
            fields,
        }
    }

    pub fn record_key(&self) -> RecordKey {
        RecordKey::new(self.entity, self.key.clone())
    }

    /// The record this one belongs to (none for shows).
    pub fn parent(&self) -> Option<RecordKey> {
        let (entity, column) = match self.entity {
            EntityType::Show => return None,
            EntityType::Asset => (self.fields.get("parent_type")?.parse().ok()?, "parent_key"),
            e => {
                let (t, c) = e.parent()?;
                (t, c)
            }
        };
        Some(RecordKey::new(entity, self.fields.get(column)?.clone()))
    }

    /// sha256 of the canonical fields (sorted by name), hex: equal content, equal hash.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.entity.as_str());
        for (k, v) in &self.fields {
            h.update([0u8]);
            h.update(k);
            h.update([1u8]);
            h.update(v);
        }
        hex(&h.finalize()[..16])
    }

    /// What identifies the object among its parent's children in the target.
    pub fn identity(&self) -> Identity {
        let get = |n: &str| self.fields.get(n).cloned().unwrap_or_default();
        match self.entity {
            EntityType::Show => Identity::Slug(get("slug")),
            EntityType::Season => Identity::Ordinal(get("ordinal").parse().unwrap_or(0)),
            EntityType::Episode => Identity::Episode {
                ordinal: get("ordinal").parse().unwrap_or(0),
                segment: get("segment"),
            },
            EntityType::Asset if get("object_type") == "full_length" => Identity::FullLength,
            EntityType::Asset => Identity::Asset {
                object_type: get("object_type"),
                title: get("title"),
            },
        }
    }

    /// The attributes the target receives: every field but the source system's keys,
    /// numbers as numbers.
    pub fn attributes(&self) -> Attributes {
        self.attributes_of(self.fields.keys().map(String::as_str))
    }

    /// Only the named fields (an update sends what changed) and their companions
    /// ([`crate::schema::companions`]); a field now empty is sent as null so the
    /// target clears it.
    pub fn attributes_of<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Attributes {
        let mut out = Attributes::new();
        let mut wanted: Vec<&str> = Vec::new();
        for name in names {
            for n in std::iter::once(name).chain(crate::schema::companions(name).iter().copied()) {
                if !wanted.contains(&n) {
                    wanted.push(n);
                }
            }
        }
        for name in wanted {
            let Some(field) = self.entity.field(name) else {
                continue;
            };
            if is_source_key(name) {
                continue;
            }
            let value = match (self.fields.get(name), field.kind) {
                (None, _) => serde_json::Value::Null,
                (Some(v), Kind::Ordinal | Kind::Duration) => v
                    .parse::<u64>()
                    .map_or_else(|_| v.clone().into(), serde_json::Value::from),
                (Some(v), _) => v.clone().into(),
            };
            out.insert(name.to_string(), value);
        }
        out
    }

    /// Fields that differ from `old`, in field order.
    pub fn diff(&self, old: &BTreeMap<String, String>) -> Vec<FieldChange> {
        self.entity
            .fields()
            .iter()
            .filter_map(|f| {
                let (o, n) = (old.get(f.name), self.fields.get(f.name));
                (o != n).then(|| FieldChange {
                    field: f.name.to_string(),
                    old: o.cloned(),
                    new: n.cloned(),
                })
            })
            .collect()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Option<Self> {
        serde_json::from_str(s).ok()
    }
}

/// Columns that identify rows in the source system; the target never sees them.
pub fn is_source_key(name: &str) -> bool {
    name.ends_with("_key") || name == "parent_type"
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// sha256 of bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A validated cell as the target gets it; `None` for an empty cell.
pub fn canonical_value(field: &Field, raw: &str) -> Option<String> {
    let v = trim(raw);
    if v.is_empty() {
        return None;
    }
    let parsed = check(field.kind, field.name, v).ok();
    Some(match (field.kind, parsed) {
        (_, Some(Value::Enum(canonical))) => canonical.to_string(),
        (_, Some(Value::Ordinal(n))) => n.to_string(),
        (_, Some(Value::DateTime(secs))) => utc(secs),
        (Kind::Duration, _) => parse_duration(v)
            .map(|s| format!("{}", s.round().max(1.0) as u64))
            .unwrap_or_else(|| v.to_string()),
        (Kind::Text { .. }, _) => normalize_text(v).into_owned(),
        (Kind::Tags, _) => v
            .split([',', ';'])
            .map(|t| normalize_text(t).into_owned())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(", "),
        (Kind::Language, _) => v.to_ascii_lowercase(),
        (Kind::Nola | Kind::Station, _) => v.to_ascii_uppercase(),
        _ => v.to_string(),
    })
}

/// `YYYY-MM-DDTHH:MM:SSZ` of seconds since the epoch.
pub fn utc(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn episode(title: &str, duration_field: Option<&str>) -> CanonicalRecord {
        let t = EntityType::Episode;
        let mut cells = vec![
            (t.field("episode_key").expect("field"), " ep-1 "),
            (t.field("season_key").expect("field"), "se-1"),
            (t.field("ordinal").expect("field"), "03"),
            (t.field("title").expect("field"), title),
            (t.field("language").expect("field"), "EN"),
        ];
        if let Some(d) = duration_field {
            cells.push((t.field("nola").expect("field"), d));
        }
        CanonicalRecord::from_cells(t, cells)
    }

    #[test]
    fn values_are_normalized_and_keys_kept_out_of_attributes() {
        let r = episode("  The \u{201c}Owls\u{201d} \u{2014} part 1 ", None);
        assert_eq!(r.key, "ep-1");
        assert_eq!(r.fields["title"], "The \"Owls\" - part 1");
        assert_eq!(r.fields["ordinal"], "3");
        assert_eq!(r.fields["language"], "en");
        assert_eq!(r.parent(), Some(RecordKey::new(EntityType::Season, "se-1")));
        let a = r.attributes();
        assert_eq!(a.get("ordinal"), Some(&serde_json::json!(3)));
        assert!(!a.contains_key("episode_key") && !a.contains_key("season_key"));
        assert_eq!(
            r.identity(),
            Identity::Episode {
                ordinal: 3,
                segment: String::new()
            }
        );
    }

    #[test]
    fn equal_content_hashes_equal_and_a_diff_names_the_fields() {
        let a = episode("Owls", None);
        let b = episode(" Owls ", None);
        let c = episode("Owls at night", Some("004726"));
        assert_eq!(a.hash(), b.hash());
        assert_ne!(a.hash(), c.hash());
        let d = c.diff(&a.fields);
        let names: Vec<&str> = d.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["title", "nola"]);
        assert_eq!(d[1].old, None);
        assert_eq!(d[1].new.as_deref(), Some("004726"));
    }

    #[test]
    fn asset_values_take_the_targets_units() {
        let t = EntityType::Asset;
        let f = |n| t.field(n).expect("field");
        let r = CanonicalRecord::from_cells(
            t,
            [
                (f("asset_key"), "a-1"),
                (f("parent_type"), "Episode"),
                (f("parent_key"), "ep-1"),
                (f("object_type"), "CLIP"),
                (f("title"), "Owls"),
                (f("duration"), "00:59:00"),
                (f("public_start"), "2026-01-01T09:00:00-05:00"),
                (f("tags"), "owls;  night ,"),
            ],
        );
        assert_eq!(r.fields["duration"], "3540");
        assert_eq!(r.fields["public_start"], "2026-01-01T14:00:00Z");
        assert_eq!(r.fields["object_type"], "clip");
        assert_eq!(r.fields["tags"], "owls, night");
        assert_eq!(
            r.parent(),
            Some(RecordKey::new(EntityType::Episode, "ep-1"))
        );
        assert_eq!(
            r.identity(),
            Identity::Asset {
                object_type: "clip".into(),
                title: "Owls".into()
            }
        );
        assert_eq!(r.attributes()["duration"], serde_json::json!(3540));
        // A window travels whole: its end changed, its start goes with it.
        let sent = r.attributes_of(["public_end"]);
        assert_eq!(sent["public_start"], "2026-01-01T14:00:00Z");
        assert_eq!(sent["public_end"], serde_json::Value::Null);
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
    }
}
