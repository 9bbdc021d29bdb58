//! The catalog's entity types, their canonical columns and the header resolution that
//! maps a spreadsheet's headers onto them (DESIGN.md §2).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Entity types, parents first: the order files are validated and synced in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityType {
    Show,
    Season,
    Episode,
    Asset,
}

impl EntityType {
    pub const ALL: [EntityType; 4] = [Self::Show, Self::Season, Self::Episode, Self::Asset];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Show => "show",
            Self::Season => "season",
            Self::Episode => "episode",
            Self::Asset => "asset",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn key_column(self) -> &'static str {
        match self {
            Self::Show => "show_key",
            Self::Season => "season_key",
            Self::Episode => "episode_key",
            Self::Asset => "asset_key",
        }
    }

    pub fn fields(self) -> &'static [Field] {
        match self {
            Self::Show => SHOW,
            Self::Season => SEASON,
            Self::Episode => EPISODE,
            Self::Asset => ASSET,
        }
    }

    pub fn field(self, name: &str) -> Option<&'static Field> {
        self.fields().iter().find(|f| f.name == name)
    }

    /// The column that names this type's parent, for the types with one fixed parent type.
    pub fn parent(self) -> Option<(EntityType, &'static str)> {
        match self {
            Self::Show => None,
            Self::Season => Some((Self::Show, "show_key")),
            Self::Episode => Some((Self::Season, "season_key")),
            // An asset's parent type is a column of its own (`parent_type`).
            Self::Asset => None,
        }
    }
}

impl fmt::Display for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EntityType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().trim_end_matches('s') {
            "show" => Ok(Self::Show),
            "season" => Ok(Self::Season),
            "episode" => Ok(Self::Episode),
            "asset" => Ok(Self::Asset),
            _ => Err(format!(
                "unknown entity type {s:?}: use show, season, episode or asset"
            )),
        }
    }
}

/// How a column's values are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An identifier from the source system.
    Key,
    /// lowercase-hyphen, e.g. `nature-the-owls-s2e5`.
    Slug,
    /// Free text of at most `max` characters; `multiline` allows line breaks.
    Text { max: usize, multiline: bool },
    /// A show's NOLA code: four letters.
    Nola,
    /// An episode's NOLA code: six digits (show, season and episode).
    EpisodeNola,
    /// An `http(s)://` URL the target fetches (a video or caption file).
    Url,
    /// ISO 639-1 language code.
    Language,
    /// One of a closed set (compared case-insensitively, written canonically).
    Enum(&'static [&'static str]),
    /// `YYYY-MM-DD`.
    Date,
    /// ISO 8601 date-time with a zone (`Z` or an offset); sent to the target in UTC.
    DateTime,
    /// A whole number ≥ 1.
    Ordinal,
    /// Seconds, or `HH:MM:SS`, greater than zero.
    Duration,
    /// Tags separated by commas or semicolons, each at most `TAG_MAX` characters.
    Tags,
    /// A station's call letters.
    Station,
}

pub const KEY_MAX: usize = 128;
pub const SLUG_MAX: usize = 100;
pub const TAG_MAX: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
}

const fn req(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: true,
    }
}

const fn opt(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: false,
    }
}

const fn text(max: usize) -> Kind {
    Kind::Text {
        max,
        multiline: false,
    }
}

const fn prose(max: usize) -> Kind {
    Kind::Text {
        max,
        multiline: true,
    }
}

pub const AUDIENCES: &[&str] = &["national", "kids", "all-stations", "local"];
pub const PARENT_TYPES: &[&str] = &["show", "season", "episode"];
/// Media Manager's asset types ("Full Length, Preview, Clip": console guide, Assets).
pub const OBJECT_TYPES: &[&str] = &["full_length", "preview", "clip"];
/// Media Manager's genres, by slug: the fixed list of `GET /genres/` (the recorded
/// fixture of pbs-media-manager-php, and the console glossary's "Must be one of").
pub const GENRES: &[&str] = &[
    "arts-and-music",
    "culture",
    "drama",
    "food",
    "history",
    "home-and-howto",
    "indie-films",
    "news-and-public-affairs",
    "science-and-nature",
];
/// Asset types that need their own title and descriptions: a full-length asset takes
/// its episode's ("Clips and previews require title … Short Description … Long
/// Description": console guide, Assets).
pub const OWN_TEXT_TYPES: &[&str] = &["preview", "clip"];
/// Longest `segment` we accept (Media Manager shows it as a short string).
pub const SEGMENT_MAX: usize = 16;
pub const CONTENT_RATINGS: &[&str] = &["TV-Y", "TV-Y7", "TV-G", "TV-PG", "TV-14", "TV-MA", "NR"];

/// Availability windows of an asset: (start column, end column).
pub const WINDOWS: &[(&str, &str)] = &[
    ("public_start", "public_end"),
    ("all_members_start", "all_members_end"),
    ("station_members_start", "station_members_end"),
];

/// Fields a target takes together: a change to one sends the others as they are
/// (an availability window is one object with its start and end; an audience is a
/// scope with its station).
pub fn companions(name: &str) -> &'static [&'static str] {
    const AUDIENCE: &[&str] = &["audience", "station"];
    if AUDIENCE.contains(&name) {
        return AUDIENCE;
    }
    for (i, (s, e)) in WINDOWS.iter().enumerate() {
        if name == *s || name == *e {
            return WINDOW_PAIRS[i];
        }
    }
    &[]
}

const WINDOW_PAIRS: &[&[&str]] = &[
    &["public_start", "public_end"],
    &["all_members_start", "all_members_end"],
    &["station_members_start", "station_members_end"],
];

static SHOW: &[Field] = &[
    req("show_key", Kind::Key),
    req("slug", Kind::Slug),
    req("title", text(256)),
    opt("description_short", prose(100)),
    opt("description_long", prose(400)),
    opt("nola", Kind::Nola),
    opt("genre", Kind::Enum(GENRES)),
    opt("language", Kind::Language),
    opt("audience", Kind::Enum(AUDIENCES)),
    opt("station", Kind::Station),
    opt("premiered_on", Kind::Date),
];

static SEASON: &[Field] = &[
    req("season_key", Kind::Key),
    req("show_key", Kind::Key),
    req("ordinal", Kind::Ordinal),
    opt("title", text(256)),
    opt("description_short", prose(100)),
    opt("description_long", prose(400)),
];

static EPISODE: &[Field] = &[
    req("episode_key", Kind::Key),
    req("season_key", Kind::Key),
    req("ordinal", Kind::Ordinal),
    opt("segment", text(SEGMENT_MAX)),
    opt("slug", Kind::Slug),
    req("title", text(120)),
    req("description_short", prose(100)),
    req("description_long", prose(400)),
    req("premiered_on", Kind::Date),
    opt("encored_on", Kind::Date),
    opt("nola", Kind::EpisodeNola),
    opt("language", Kind::Language),
];

static ASSET: &[Field] = &[
    req("asset_key", Kind::Key),
    req("parent_type", Kind::Enum(PARENT_TYPES)),
    req("parent_key", Kind::Key),
    req("object_type", Kind::Enum(OBJECT_TYPES)),
    // Required for clips and previews (a row rule); a full-length asset's comes from
    // its episode.
    opt("title", text(120)),
    opt("description_short", prose(100)),
    opt("description_long", prose(400)),
    opt("duration", Kind::Duration),
    opt("content_rating", Kind::Enum(CONTENT_RATINGS)),
    opt("public_start", Kind::DateTime),
    opt("public_end", Kind::DateTime),
    opt("all_members_start", Kind::DateTime),
    opt("all_members_end", Kind::DateTime),
    opt("station_members_start", Kind::DateTime),
    opt("station_members_end", Kind::DateTime),
    opt("tags", Kind::Tags),
    opt("video_source", Kind::Url),
    opt("caption_source", Kind::Url),
];

/// Header comparison ignores case, spaces, hyphens and underscores:
/// "Episode Key", "episode-key" and "EPISODE_KEY" are all `episode_key`.
pub fn header_token(header: &str) -> String {
    header
        .trim()
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_' | '\u{a0}'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Is `name` a canonical column of any type (for mapping files)?
pub fn is_canonical_column(name: &str) -> bool {
    EntityType::ALL
        .iter()
        .any(|t| t.fields().iter().any(|f| f.name == name))
}

/// Detect the type from canonical column names: the most specific key column wins
/// (an episode file also carries `season_key`, a season file `show_key`).
pub fn detect_type<'a>(columns: impl Iterator<Item = &'a str> + Clone) -> Option<EntityType> {
    [
        EntityType::Asset,
        EntityType::Episode,
        EntityType::Season,
        EntityType::Show,
    ]
    .into_iter()
    .find(|t| columns.clone().any(|c| c == t.key_column()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_tokens_ignore_case_space_hyphen_underscore() {
        for h in [
            "Episode Key",
            "episode_key",
            "EPISODE-KEY",
            " episodeKey ",
            "\u{feff}episode key",
        ] {
            assert_eq!(header_token(h), "episodekey", "{h}");
        }
        assert_ne!(header_token("Ep #"), header_token("ep"));
    }

    #[test]
    fn detects_the_most_specific_type() {
        let ep = ["episode_key", "season_key", "title"];
        assert_eq!(detect_type(ep.iter().copied()), Some(EntityType::Episode));
        let season = ["show_key", "season_key"];
        assert_eq!(
            detect_type(season.iter().copied()),
            Some(EntityType::Season)
        );
        let asset = ["asset_key", "parent_key"];
        assert_eq!(detect_type(asset.iter().copied()), Some(EntityType::Asset));
        assert_eq!(detect_type(["title"].iter().copied()), None);
    }

    #[test]
    fn entity_types_parse_singular_and_plural() {
        assert_eq!("Episodes".parse::<EntityType>(), Ok(EntityType::Episode));
        assert!("movie".parse::<EntityType>().is_err());
    }

    #[test]
    fn required_columns_match_the_domain() {
        let names = |t: EntityType| -> Vec<&str> {
            t.fields()
                .iter()
                .filter(|f| f.required)
                .map(|f| f.name)
                .collect()
        };
        assert_eq!(names(EntityType::Show), ["show_key", "slug", "title"]);
        assert_eq!(
            names(EntityType::Season),
            ["season_key", "show_key", "ordinal"]
        );
        assert_eq!(
            names(EntityType::Episode),
            [
                "episode_key",
                "season_key",
                "ordinal",
                "title",
                "description_short",
                "description_long",
                "premiered_on"
            ]
        );
        assert_eq!(
            names(EntityType::Asset),
            ["asset_key", "parent_type", "parent_key", "object_type"]
        );
    }
}
