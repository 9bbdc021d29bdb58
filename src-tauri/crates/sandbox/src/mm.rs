//! Media Manager's rules for what a write may carry, as its public record has them
//! (docs.pbs.org's console guide and Changelog Endpoint page, and the clients stations
//! run: pbs-media-manager-php with its recorded fixtures, PBS_Media_Manager_Client,
//! cove-asset-manager). The README lists each rule with its source.
//!
//! Where the record is silent on what the real API does with a wrong value, the sandbox
//! refuses it and names the field: Django REST framework, which the API's answers come
//! from, ignores unknown fields, which would lose the value without a word.

use metasync_engine::schema::{
    Kind, AUDIENCES, CONTENT_RATINGS, GENRES, OBJECT_TYPES, OWN_TEXT_TYPES,
};
use metasync_engine::text::check;
use metasync_engine::EntityType;
use serde_json::{Map, Value};

/// A refused attribute: its name and Media Manager's sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub field: String,
    pub message: String,
}

fn refuse(field: &str, message: impl Into<String>) -> Refusal {
    Refusal {
        field: field.to_string(),
        message: message.into(),
    }
}

/// Which write: a create (`POST`), an update (`PATCH /{type}s/{id}/`) or an asset's
/// edit endpoint (`PATCH /assets/{id}/edit/`, where video and caption files go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Create,
    Update,
    Edit,
}

/// The attributes each type takes (recorded objects of pbs-media-manager-php's
/// fixtures: getShow, getSeason, getEpisode, getAsset).
fn known(kind: EntityType) -> &'static [&'static str] {
    match kind {
        EntityType::Show => &[
            "slug",
            "title",
            "description_short",
            "description_long",
            "nola",
            "genre",
            "language",
            "audience",
            "premiered_on",
        ],
        // "ordinal, title, title_sortable, description_short, description_long".
        EntityType::Season => &["ordinal", "title", "description_short", "description_long"],
        EntityType::Episode => &[
            "ordinal",
            "segment",
            "slug",
            "title",
            "description_short",
            "description_long",
            "premiered_on",
            "encored_on",
            "nola",
            "language",
        ],
        EntityType::Asset => &[
            "object_type",
            "slug",
            "title",
            "description_short",
            "description_long",
            "duration",
            "content_rating",
            "availabilities",
            "tags",
            "language",
        ],
    }
}

/// What the edit endpoint takes besides an asset's attributes.
const EDIT_ONLY: &[&str] = &["video", "caption", "replace"];

/// Availability windows (recorded asset: `availabilities.{public, all_members,
/// station_members}.{start, end}`).
const WINDOWS: &[&str] = &["public", "all_members", "station_members"];

/// Check a write's attributes. On a create of a full-length asset, the title and
/// descriptions are dropped (they come from the episode; pbs-media-manager-php:
/// "silently ignored").
pub fn check_write(
    kind: EntityType,
    attributes: &mut Map<String, Value>,
    write: Write,
) -> Result<(), Refusal> {
    let object_type = attributes
        .get("object_type")
        .and_then(Value::as_str)
        .map(String::from);
    for (name, value) in attributes.iter() {
        let edit_field = kind == EntityType::Asset && EDIT_ONLY.contains(&name.as_str());
        if edit_field && write != Write::Edit {
            return Err(refuse(
                name,
                "Files are sent through the asset's edit endpoint.",
            ));
        }
        if !edit_field && !known(kind).contains(&name.as_str()) {
            return Err(refuse(name, format!("{kind}s have no field {name}.")));
        }
        check_value(kind, name, value)?;
    }
    if write == Write::Create {
        let required: &[&str] = match (kind, object_type.as_deref()) {
            (EntityType::Show, _) => &["slug", "title"],
            (EntityType::Season, _) => &["ordinal"],
            (EntityType::Episode, _) => {
                &["ordinal", "title", "description_short", "description_long"]
            }
            (EntityType::Asset, Some(t)) if OWN_TEXT_TYPES.contains(&t) => &[
                "object_type",
                "title",
                "description_short",
                "description_long",
            ],
            (EntityType::Asset, _) => &["object_type"],
        };
        for name in required {
            let missing = match attributes.get(*name) {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.trim().is_empty(),
                Some(_) => false,
            };
            if missing {
                return Err(refuse(name, "This field is required."));
            }
        }
        if object_type.as_deref() == Some("full_length") {
            for name in ["title", "description_short", "description_long"] {
                attributes.remove(name);
            }
        }
    }
    Ok(())
}

fn check_value(kind: EntityType, name: &str, value: &Value) -> Result<(), Refusal> {
    if value.is_null() {
        return Ok(());
    }
    let text = |k: Kind| -> Result<(), Refusal> {
        let Some(s) = value.as_str() else {
            return Err(refuse(name, "A string is required."));
        };
        check(k, name, s.trim())
            .map(drop)
            .map_err(|p| refuse(name, p.message))
    };
    match (kind, name) {
        (_, "title") => text(Kind::Text {
            max: if matches!(kind, EntityType::Show | EntityType::Season) {
                256
            } else {
                120
            },
            multiline: false,
        }),
        (_, "description_short") => text(Kind::Text {
            max: 100,
            multiline: true,
        }),
        (_, "description_long") => text(Kind::Text {
            max: 400,
            multiline: true,
        }),
        (_, "slug") => text(Kind::Slug),
        (_, "language") => text(Kind::Language),
        (_, "premiered_on" | "encored_on") => text(Kind::Date),
        (EntityType::Show, "nola") => text(Kind::Nola),
        // "Six-digit broadcast code" (console guide, Episodes).
        (EntityType::Episode, "nola") => text(Kind::EpisodeNola),
        (_, "segment") => value
            .as_str()
            .map(drop)
            .ok_or_else(|| refuse(name, "A string is required.")),
        (EntityType::Show, "genre") => match value.as_str() {
            Some(g) if GENRES.contains(&g) => Ok(()),
            _ => Err(refuse(
                name,
                format!("Must be one of: {}.", GENRES.join(", ")),
            )),
        },
        (EntityType::Show, "audience") => audience(value),
        (_, "ordinal") => match value.as_u64() {
            Some(n) if n >= 1 => Ok(()),
            _ => Err(refuse(name, "A whole number of at least 1 is required.")),
        },
        // Whole seconds (recorded asset: `"duration": 2664`).
        (_, "duration") => match value.as_u64() {
            Some(n) if n >= 1 => Ok(()),
            _ => Err(refuse(name, "A whole number of seconds is required.")),
        },
        (_, "object_type") => match value.as_str() {
            Some(t) if OBJECT_TYPES.contains(&t) => Ok(()),
            _ => Err(refuse(
                name,
                format!("Must be one of: {}.", OBJECT_TYPES.join(", ")),
            )),
        },
        (_, "content_rating") => match value.as_str() {
            Some(t) if CONTENT_RATINGS.contains(&t) => Ok(()),
            _ => Err(refuse(name, "Not a content rating.")),
        },
        // A list of strings (recorded assets; cove-asset-manager sends a list).
        (_, "tags") => match value.as_array() {
            Some(items) if items.iter().all(Value::is_string) => Ok(()),
            _ => Err(refuse(name, "A list of strings is required.")),
        },
        (_, "availabilities") => availabilities(value),
        (_, "video") => match (value["source"].as_str(), value["profile"].as_str()) {
            (Some(source), Some(_)) if is_url(source) => Ok(()),
            _ => Err(refuse(name, "A video needs a source URL and a profile.")),
        },
        (_, "caption") => match value.as_str() {
            Some(url) if is_url(url) => Ok(()),
            _ => Err(refuse(name, "A caption is the URL of its file.")),
        },
        (_, "replace") => value
            .as_bool()
            .map(drop)
            .ok_or_else(|| refuse(name, "true or false.")),
        _ => Ok(()),
    }
}

fn is_url(v: &str) -> bool {
    check(Kind::Url, "url", v).is_ok()
}

/// `[{"scope": "national", "station": null}]` (recorded show); a `local` scope always
/// has a station ("Audience and Availability Rules", console guide).
fn audience(value: &Value) -> Result<(), Refusal> {
    let Some(items) = value.as_array() else {
        return Err(refuse(
            "audience",
            "A list of {scope, station} is required.",
        ));
    };
    for item in items {
        let scope = item["scope"].as_str().unwrap_or_default();
        if !AUDIENCES.contains(&scope) {
            return Err(refuse(
                "audience",
                format!("scope must be one of: {}.", AUDIENCES.join(", ")),
            ));
        }
        if scope == "local" && item["station"].as_str().is_none_or(str::is_empty) {
            return Err(refuse("audience", "A local audience needs a station."));
        }
    }
    Ok(())
}

/// `{window: {start, end}}`, each an instant in UTC written with a `Z`
/// ("the Media Manager API is picky about the format of dates … 'Z' means UTC and is
/// required": PBS_Media_Manager_Client's change_asset_availability example).
fn availabilities(value: &Value) -> Result<(), Refusal> {
    let Some(windows) = value.as_object() else {
        return Err(refuse(
            "availabilities",
            "An object of windows is required.",
        ));
    };
    for (window, w) in windows {
        if !WINDOWS.contains(&window.as_str()) {
            return Err(refuse(
                "availabilities",
                format!("{window} is not a window: use {}.", WINDOWS.join(", ")),
            ));
        }
        let Some(edges) = w.as_object() else {
            return Err(refuse(
                "availabilities",
                format!("{window} must be {{start, end}}."),
            ));
        };
        for (edge, at) in edges {
            if !matches!(edge.as_str(), "start" | "end") {
                return Err(refuse("availabilities", format!("{window} has no {edge}.")));
            }
            match at {
                Value::Null => {}
                Value::String(s) if is_utc(s) => {}
                _ => {
                    return Err(refuse(
                        "availabilities",
                        format!("{window}.{edge} must be a UTC date-time ending in Z, e.g. 2023-01-01T05:00:00Z."),
                    ))
                }
            }
        }
    }
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SS` with an optional fraction, then `Z`.
pub fn is_utc(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() < 20 || b.last() != Some(&b'Z') {
        return false;
    }
    let shape = digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    let rest = &b[19..b.len() - 1];
    shape
        && (rest.is_empty()
            || (rest[0] == b'.' && rest.len() > 1 && rest[1..].iter().all(u8::is_ascii_digit)))
}

/// `since` of the changelog: "%Y-%m-%dT%H:%M:%S" with an optional fraction and `Z`
/// (Changelog Endpoint page), as seconds and microseconds for comparing.
pub fn parse_since(s: &str) -> Option<(i64, u32)> {
    let t = s.trim_end_matches('Z');
    let (main, frac) = t.split_once('.').unwrap_or((t, ""));
    let secs = metasync_engine::text::parse_datetime(&format!("{main}Z")).ok()?;
    let micros: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    Some((secs, micros.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn flat_windows_and_text_tags_are_refused() {
        let mut a = attrs(
            json!({"object_type": "clip", "title": "t", "description_short": "s",
            "description_long": "l", "public_start": "2026-01-01T00:00:00Z"}),
        );
        assert_eq!(
            check_write(EntityType::Asset, &mut a, Write::Create).map_err(|r| r.field),
            Err("public_start".into())
        );
        let mut a = attrs(
            json!({"object_type": "clip", "title": "t", "description_short": "s",
            "description_long": "l", "tags": "a, b"}),
        );
        assert!(check_write(EntityType::Asset, &mut a, Write::Create).is_err());
        let mut a = attrs(
            json!({"object_type": "clip", "title": "t", "description_short": "s",
            "description_long": "l", "tags": ["a"],
            "availabilities": {"public": {"start": "2026-01-01T05:00:00Z", "end": null}}}),
        );
        assert_eq!(
            check_write(EntityType::Asset, &mut a, Write::Create),
            Ok(())
        );
        let mut a =
            attrs(json!({"availabilities": {"public": {"start": "2026-01-01T00:00:00-05:00"}}}));
        assert!(check_write(EntityType::Asset, &mut a, Write::Update).is_err());
    }

    #[test]
    fn clips_need_their_text_and_full_lengths_take_their_episodes() {
        let mut clip = attrs(json!({"object_type": "clip", "title": "t"}));
        assert_eq!(
            check_write(EntityType::Asset, &mut clip, Write::Create).map_err(|r| r.field),
            Err("description_short".into())
        );
        let mut full = attrs(json!({"object_type": "full_length", "title": "ignored"}));
        assert_eq!(
            check_write(EntityType::Asset, &mut full, Write::Create),
            Ok(())
        );
        assert!(full.get("title").is_none());
        let mut video = attrs(json!({"video": {"profile": "p", "source": "https://x/a.mov"}}));
        assert!(check_write(EntityType::Asset, &mut video.clone(), Write::Update).is_err());
        assert_eq!(
            check_write(EntityType::Asset, &mut video, Write::Edit),
            Ok(())
        );
    }

    #[test]
    fn shapes_of_shows_episodes_and_seasons() {
        let mut show = attrs(json!({"slug": "nova", "title": "Nova", "genre": "Science & Nature"}));
        assert!(check_write(EntityType::Show, &mut show, Write::Create).is_err());
        let mut show = attrs(
            json!({"slug": "nova", "title": "Nova", "genre": "science-and-nature",
            "audience": [{"scope": "local", "station": "WGBH"}], "nola": "NOVA"}),
        );
        assert_eq!(
            check_write(EntityType::Show, &mut show, Write::Create),
            Ok(())
        );
        let mut ep = attrs(json!({"ordinal": 1, "title": "t", "description_short": "s",
            "description_long": "l", "nola": "NOVA"}));
        assert!(check_write(EntityType::Episode, &mut ep, Write::Create).is_err());
        let mut season = attrs(json!({"ordinal": 1, "premiered_on": "2020-01-01"}));
        assert!(check_write(EntityType::Season, &mut season, Write::Create).is_err());
        assert!(is_utc("2019-07-01T14:18:25.389258Z"));
        assert!(!is_utc("2019-07-01 14:18:25"));
        assert_eq!(parse_since("1970-01-01T00:00:01.5Z"), Some((1, 500_000)));
    }
}
