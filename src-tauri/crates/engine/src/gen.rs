//! Deterministic synthetic catalogs: the same seed gives the same bytes, on any
//! machine and any version of our dependencies (the generator is our own).
//! Used by tests, benchmarks and the demo.

use crate::schema::{EntityType, GENRES};
use crate::text::{civil_from_days, suggest_slug};
use std::io::{self, Write};

/// SplitMix64: tiny, fast, and stable forever.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
    /// Uniform in `0..1` (53 random bits).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / ((1u64 << 53) as f64)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next_u64() % items.len() as u64) as usize]
    }
}

const ADJECTIVES: &[&str] = &[
    "Hidden",
    "Wild",
    "Secret",
    "Ancient",
    "Lost",
    "Silent",
    "Frozen",
    "Golden",
    "Forgotten",
    "Restless",
    "Invisible",
    "Great",
    "Last",
    "Rising",
    "Deep",
    "Untold",
    "Northern",
    "Urban",
];
const NOUNS: &[&str] = &[
    "River",
    "Kingdom",
    "Forest",
    "Empire",
    "Ocean",
    "City",
    "Garden",
    "Frontier",
    "Island",
    "Machine",
    "Voyage",
    "Harvest",
    "Orchestra",
    "Canyon",
    "Archive",
    "Lighthouse",
    "Glacier",
];
const PLACES: &[&str] = &[
    "the Mississippi Delta",
    "Appalachia",
    "the Great Plains",
    "Québec",
    "São Paulo",
    "Zürich",
    "Kraków",
    "Reykjavík",
    "the Sonoran Desert",
    "Chesapeake Bay",
    "the Pacific Northwest",
    "New Orleans",
    "the Yukon",
    "Oaxaca",
    "Lake Superior",
    "the Outer Banks",
];
const PEOPLE: &[&str] = &[
    "a marine biologist",
    "a retired engineer",
    "a local historian",
    "a young chef",
    "a park ranger",
    "a team of archaeologists",
    "a jazz trumpeter",
    "a volunteer firefighter",
    "a family of beekeepers",
    "an astronomer",
];
/// (base form, third person).
const VERBS: &[(&str, &str)] = &[
    ("uncover", "uncovers"),
    ("follow", "follows"),
    ("rebuild", "rebuilds"),
    ("document", "documents"),
    ("chase", "chases"),
    ("restore", "restores"),
    ("explore", "explores"),
    ("celebrate", "celebrates"),
    ("investigate", "investigates"),
    ("revisit", "revisits"),
];
const LANGUAGES: &[&str] = &["en", "en", "en", "en", "es", "fr"];
const NOLAS: &[&str] = &[
    "NOVA", "NATU", "FRON", "AMEX", "MAST", "INDE", "POVS", "ANRO",
];
const RATINGS: &[&str] = &["TV-G", "TV-PG", "TV-PG", "TV-14", "NR", "TV-Y7"];
const TAGS: &[&str] = &[
    "nature", "history", "science", "music", "travel", "family", "food", "climate",
];

fn sentence(rng: &mut Rng) -> String {
    let place = rng.pick(PLACES);
    let who = rng.pick(PEOPLE);
    let (base, verb) = VERBS[(rng.next_u64() % VERBS.len() as u64) as usize];
    let adj = rng.pick(ADJECTIVES).to_lowercase();
    let noun = rng.pick(NOUNS).to_lowercase();
    // Some exports keep Word's curly apostrophes; the validator must take them.
    let apostrophe = if rng.chance(0.2) { "\u{2019}" } else { "'" };
    match rng.next_u64() % 4 {
        0 => format!("In {place}, {who} {verb} the {adj} story of a {noun}."),
        1 => format!("The {noun}{apostrophe}s {adj} past comes to light as {who} {verb} {place}."),
        2 => format!(
            "Why does {place} hold a {adj} {noun}? Scientists and {who} set out to {base} it."
        ),
        _ => format!("{who} {verb} {place} and the {adj} {noun} that shaped it.")
            .chars()
            .enumerate()
            .map(|(i, c)| if i == 0 { c.to_ascii_uppercase() } else { c })
            .collect(),
    }
}

/// Whole sentences up to about `target` characters, never more than `max`; a first
/// sentence over `max` is cut at a word.
fn prose(rng: &mut Rng, target: usize, max: usize) -> String {
    let mut out = String::new();
    let mut len = 0;
    while len < target {
        let next = sentence(rng);
        let next_len = next.chars().count() + usize::from(len > 0);
        if len > 0 && len + next_len > max {
            break;
        }
        if len > 0 {
            out.push(' ');
        }
        out.push_str(&next);
        len += next_len;
    }
    if len > max {
        let cut: String = out.chars().take(max).collect();
        let end = cut.rfind(' ').unwrap_or(cut.len());
        out = cut[..end].trim_end_matches([',', ' ']).to_string();
    }
    out
}

fn date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

fn datetime(days: i64, hour: u64) -> String {
    format!("{}T{hour:02}:00:00Z", date(days))
}

fn title(rng: &mut Rng) -> String {
    let adj = rng.pick(ADJECTIVES);
    let noun = rng.pick(NOUNS);
    match rng.next_u64() % 4 {
        0 => format!("The {adj} {noun}"),
        1 => format!("{noun} of {}", rng.pick(PLACES)),
        2 => format!("Inside the {adj} {noun}"),
        _ => format!("{adj} {noun}s"),
    }
}

pub const fn columns(t: EntityType) -> &'static [&'static str] {
    match t {
        EntityType::Show => &[
            "show_key",
            "slug",
            "title",
            "description_short",
            "description_long",
            "nola",
            "genre",
            "language",
            "audience",
            "station",
            "premiered_on",
        ],
        EntityType::Season => &[
            "season_key",
            "show_key",
            "ordinal",
            "title",
            "description_short",
            "description_long",
        ],
        EntityType::Episode => &[
            "episode_key",
            "season_key",
            "ordinal",
            "slug",
            "title",
            "description_short",
            "description_long",
            "premiered_on",
            "encored_on",
            "nola",
            "language",
            "segment",
        ],
        EntityType::Asset => &[
            "asset_key",
            "parent_type",
            "parent_key",
            "object_type",
            "title",
            "duration",
            "content_rating",
            "public_start",
            "public_end",
            "all_members_start",
            "all_members_end",
            "station_members_start",
            "station_members_end",
            "tags",
            "description_short",
            "description_long",
            "video_source",
            "caption_source",
        ],
    }
}

/// Make one row invalid in a way staff really produce.
fn corrupt(t: EntityType, row: &mut [String], rng: &mut Rng, previous_key: &str) {
    let long = |n: usize| "Lorem ipsum dolor sit amet ".repeat(n / 27 + 1);
    match (t, rng.next_u64() % 6) {
        (EntityType::Show, 0) => row[1] = row[2].clone(),
        (EntityType::Show, 1) => row[2].clear(),
        (EntityType::Show, 2) => row[8] = "regional".into(),
        (EntityType::Show, 3) => row[7] = "English".into(),
        (EntityType::Show, 4) => {
            row[8] = "local".into();
            row[9].clear();
        }
        (EntityType::Season, 0) => row[2] = "first".into(),
        (EntityType::Season, 1) => row[1].clear(),
        (EntityType::Season, 2) => row[3] = long(300),
        (EntityType::Season, 3) => row[2] = "0".into(),
        (EntityType::Episode, 0) => row[4] = long(130),
        (EntityType::Episode, 1) => row[7] = "3/14/2021".into(),
        (EntityType::Episode, 2) => row[5].clear(),
        (EntityType::Episode, 3) => row[3] = format!("{} Copy", row[4]),
        (EntityType::Episode, 4) => {
            row[7] = "2022-05-01".into();
            row[8] = "2021-01-01".into();
        }
        (EntityType::Asset, 0) => row[3] = "trailer".into(),
        (EntityType::Asset, 1) => row[5] = "0".into(),
        (EntityType::Asset, 2) => row[6] = "PG-13".into(),
        (EntityType::Asset, 3) => row.swap(7, 8),
        // A clip without its own title.
        (EntityType::Asset, 4) => {
            row[3] = "clip".into();
            row[4].clear();
        }
        // A copied row: the key of the row before.
        _ if !previous_key.is_empty() => row[0] = previous_key.to_string(),
        _ => row[0].push_str(" !"),
    }
}

/// What an episode inherits from its season and show.
#[derive(Clone, Copy)]
struct SeasonCtx<'a> {
    show_slug: &'a str,
    key: &'a str,
    ordinal: u64,
    start: i64,
    language: &'a str,
}

pub struct GenOptions {
    pub seed: u64,
    pub invalid_ratio: f64,
}

/// The four files of a catalog, or one of them.
pub struct Generator<W: Write> {
    opts: GenOptions,
    out: [Option<csv::Writer<W>>; 4],
    counts: [u64; 4],
    limit: Option<(EntityType, u64)>,
    previous: [String; 4],
    row: Vec<String>,
}

impl<W: Write> Generator<W> {
    /// `writers[t]` receives type `t`'s rows (None: not generated).
    pub fn new(opts: GenOptions, writers: [Option<W>; 4]) -> io::Result<Self> {
        let mut out: [Option<csv::Writer<W>>; 4] = writers.map(|w| w.map(csv::Writer::from_writer));
        for (t, w) in EntityType::ALL.iter().zip(out.iter_mut()) {
            if let Some(w) = w {
                w.write_record(columns(*t))?;
            }
        }
        Ok(Self {
            opts,
            out,
            counts: [0; 4],
            limit: None,
            previous: Default::default(),
            row: Vec::new(),
        })
    }

    fn done(&self) -> bool {
        self.limit.is_some_and(|(t, n)| self.counts[t.index()] >= n)
    }

    fn emit(&mut self, t: EntityType, rng: &mut Rng) -> io::Result<()> {
        if self.done() {
            return Ok(());
        }
        let i = t.index();
        let Some(w) = self.out[i].as_mut() else {
            return Ok(());
        };
        let key = self.row[0].clone();
        if self.opts.invalid_ratio > 0.0 && rng.chance(self.opts.invalid_ratio) {
            corrupt(t, &mut self.row, rng, &self.previous[i]);
        }
        w.write_record(&self.row)?;
        self.previous[i] = key;
        self.counts[i] += 1;
        Ok(())
    }

    /// Rows of one type until `rows` have been written.
    pub fn rows_of(mut self, t: EntityType, rows: u64) -> io::Result<[u64; 4]> {
        self.limit = Some((t, rows));
        let mut show = 0;
        while !self.done() {
            show += 1;
            self.show(show)?;
        }
        self.finish()
    }

    /// A whole catalog of `shows` shows.
    pub fn catalog(mut self, shows: u64) -> io::Result<[u64; 4]> {
        for show in 1..=shows {
            self.show(show)?;
        }
        self.finish()
    }

    fn finish(mut self) -> io::Result<[u64; 4]> {
        for w in self.out.iter_mut().flatten() {
            w.flush()?;
        }
        Ok(self.counts)
    }

    fn set(&mut self, cells: &[&str]) {
        self.row.clear();
        self.row.extend(cells.iter().map(|c| c.to_string()));
    }

    fn show(&mut self, n: u64) -> io::Result<()> {
        // Each show has its own stream: show n is the same whatever else is generated.
        let mut rng = Rng::new(self.opts.seed ^ n.wrapping_mul(0xA076_1D64_78BD_642F));
        let show_key = format!("SH{n:06}");
        let show_title = title(&mut rng);
        let slug = format!("{}-{n}", suggest_slug(&show_title));
        let premiered = rng.range(5_500, 19_500) as i64;
        let local = rng.chance(0.1);
        let nola = rng.pick(NOLAS);
        let language = rng.pick(LANGUAGES);
        let (short, long) = (prose(&mut rng, 70, 100), prose(&mut rng, 260, 400));
        let audience = if local {
            "local"
        } else {
            rng.pick(&["national", "kids", "all-stations"])
        };
        let genre = rng.pick(GENRES);
        self.set(&[
            &show_key,
            &slug,
            &show_title,
            &short,
            &long,
            nola,
            genre,
            language,
            audience,
            if local { "WGBH" } else { "" },
            &date(premiered),
        ]);
        self.emit(EntityType::Show, &mut rng)?;
        let asset_key = format!("{show_key}-PV");
        let start = premiered - 30;
        let (pv_short, pv_long) = (prose(&mut rng, 60, 100), prose(&mut rng, 200, 400));
        self.set(&[
            &asset_key,
            "show",
            &show_key,
            "preview",
            &format!("{show_title} | Preview"),
            &format!("{}", rng.range(30, 120)),
            "NR",
            &datetime(start, 4),
            "",
            "",
            "",
            "",
            "",
            rng.pick(TAGS),
            &pv_short,
            &pv_long,
            "",
            "",
        ]);
        self.emit(EntityType::Asset, &mut rng)?;
        let seasons = rng.range(1, 5);
        for s in 1..=seasons {
            if self.done() {
                return Ok(());
            }
            let season_key = format!("{show_key}-S{s:02}");
            let season_start = premiered + (s as i64 - 1) * 365;
            let (short, long) = (prose(&mut rng, 60, 100), prose(&mut rng, 200, 400));
            self.set(&[
                &season_key,
                &show_key,
                &s.to_string(),
                &format!("Season {s}"),
                &short,
                &long,
            ]);
            self.emit(EntityType::Season, &mut rng)?;
            for e in 1..=rng.range(4, 13) {
                if self.done() {
                    return Ok(());
                }
                let season = SeasonCtx {
                    show_slug: &slug,
                    key: &season_key,
                    ordinal: s,
                    start: season_start,
                    language,
                };
                self.episode(&mut rng, &season, e)?;
            }
        }
        Ok(())
    }

    fn episode(&mut self, rng: &mut Rng, season: &SeasonCtx<'_>, e: u64) -> io::Result<()> {
        let SeasonCtx {
            show_slug,
            key: season_key,
            ordinal: s,
            start: season_start,
            language,
        } = *season;
        let episode_key = format!("{season_key}-E{e:02}");
        let ep_title = title(rng);
        let slug = format!("{show_slug}-s{s}e{e}");
        let aired = season_start + (e as i64 - 1) * 7;
        let encore = if rng.chance(0.3) {
            date(aired + rng.range(0, 400) as i64)
        } else {
            String::new()
        };
        let (short, long) = (prose(rng, 70, 100), prose(rng, 260, 400));
        self.set(&[
            &episode_key,
            season_key,
            &e.to_string(),
            &slug,
            &ep_title,
            &short,
            &long,
            &date(aired),
            &encore,
            // Season and episode numbers: an episode NOLA's six digits.
            &format!("{s:03}{e:03}"),
            language,
            "",
        ]);
        self.emit(EntityType::Episode, rng)?;
        let runtime = rng.range(1_500, 3_600);
        let rating = rng.pick(RATINGS);
        let tags = format!("{}, {}", rng.pick(TAGS), rng.pick(TAGS));
        self.set(&[
            &format!("{episode_key}-FL"),
            "episode",
            &episode_key,
            "full_length",
            &ep_title,
            &format!(
                "{:02}:{:02}:{:02}",
                runtime / 3600,
                runtime / 60 % 60,
                runtime % 60
            ),
            rating,
            &datetime(aired, 4),
            &datetime(aired + 28, 4),
            &datetime(aired, 4),
            "",
            "",
            "",
            &tags,
            "",
            "",
            &format!("https://media.example.org/mezzanine/{episode_key}.mov"),
            &if rng.chance(0.5) {
                format!("https://media.example.org/captions/{episode_key}.dfxp")
            } else {
                String::new()
            },
        ]);
        self.emit(EntityType::Asset, rng)?;
        for c in 1..=rng.range(0, 2) {
            let kind = rng.pick(&["clip", "preview"]);
            let (c_short, c_long) = (prose(rng, 60, 100), prose(rng, 150, 400));
            self.set(&[
                &format!("{episode_key}-C{c}"),
                "episode",
                &episode_key,
                kind,
                // Numbered: an asset is found again by object type and title under
                // its episode, so two clips of one episode must not share a title.
                &format!(
                    "{ep_title} | {} {c}",
                    if kind == "preview" { "Preview" } else { "Clip" }
                ),
                &rng.range(30, 600).to_string(),
                rating,
                &datetime(aired - 7, 4),
                "",
                "",
                "",
                "",
                "",
                rng.pick(TAGS),
                &c_short,
                &c_long,
                "",
                "",
            ]);
            self.emit(EntityType::Asset, rng)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen(t: EntityType, rows: u64, seed: u64, ratio: f64) -> Vec<u8> {
        let mut writers: [Option<Vec<u8>>; 4] = Default::default();
        writers[t.index()] = Some(Vec::new());
        let g = Generator::new(
            GenOptions {
                seed,
                invalid_ratio: ratio,
            },
            writers,
        );
        let counts = g.and_then(|g| g.rows_of(t, rows));
        assert_eq!(counts.ok().map(|c| c[t.index()]), Some(rows));
        // rows_of consumed the writers; regenerate into a shared buffer to read them.
        let mut buf = Vec::new();
        {
            let mut writers: [Option<&mut Vec<u8>>; 4] = Default::default();
            writers[t.index()] = Some(&mut buf);
            let g = Generator::new(
                GenOptions {
                    seed,
                    invalid_ratio: ratio,
                },
                writers,
            );
            assert!(g.and_then(|g| g.rows_of(t, rows)).is_ok());
        }
        buf
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = gen(EntityType::Episode, 500, 7, 0.1);
        assert_eq!(a, gen(EntityType::Episode, 500, 7, 0.1));
        assert_ne!(a, gen(EntityType::Episode, 500, 8, 0.1));
        let lines = a.iter().filter(|&&b| b == b'\n').count();
        assert_eq!(lines, 501);
    }

    #[test]
    fn prose_respects_its_limit_and_cuts_at_words() {
        let mut rng = Rng::new(1);
        for _ in 0..200 {
            let p = prose(&mut rng, 260, 400);
            assert!(p.chars().count() <= 400);
            assert!(!p.ends_with(' '));
        }
    }
}
