//! `metasync gen`.

use crate::output::{fail, thousands};
use metasync_engine::gen::{GenOptions, Generator};
use metasync_engine::EntityType;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The entity type of the rows (without --catalog).
    #[arg(
        long = "type",
        value_name = "T",
        required_unless_present = "catalog",
        conflicts_with = "catalog"
    )]
    entity_type: Option<EntityType>,
    /// How many rows (with --type).
    #[arg(long, value_name = "N", requires = "entity_type")]
    rows: Option<u64>,
    /// Write a whole catalog (shows.csv, seasons.csv, episodes.csv, assets.csv) into --out DIR.
    #[arg(long, requires_all = ["shows", "out"])]
    catalog: bool,
    /// How many shows (with --catalog).
    #[arg(long, value_name = "N")]
    shows: Option<u64>,
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// Share of rows made invalid the way spreadsheets go wrong (0 to 1).
    #[arg(long, value_name = "R", default_value_t = 0.0)]
    invalid_ratio: f64,
    /// File (or with --catalog, directory) to write; standard output otherwise.
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> u8 {
    if !(0.0..=1.0).contains(&args.invalid_ratio) {
        return fail("--invalid-ratio must be between 0 and 1");
    }
    let opts = GenOptions {
        seed: args.seed,
        invalid_ratio: args.invalid_ratio,
    };
    let result = if args.catalog {
        catalog(opts, args.shows.unwrap_or(0), args.out.unwrap_or_default())
    } else {
        let t = args.entity_type.unwrap_or(EntityType::Episode);
        let rows = args.rows.unwrap_or(100);
        one_type(opts, t, rows, args.out)
    };
    match result {
        Ok(()) => 0,
        // `metasync gen ... | head` is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(e) => fail(e),
    }
}

fn one_type(opts: GenOptions, t: EntityType, rows: u64, out: Option<PathBuf>) -> io::Result<()> {
    let w: Box<dyn Write> = match &out {
        Some(p) => Box::new(BufWriter::with_capacity(
            1 << 20,
            File::create(p).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot write {}: {e}", p.display()))
            })?,
        )),
        None => Box::new(BufWriter::with_capacity(1 << 20, io::stdout().lock())),
    };
    let mut writers: [Option<Box<dyn Write>>; 4] = Default::default();
    writers[t.index()] = Some(w);
    Generator::new(opts, writers)?.rows_of(t, rows)?;
    if let Some(p) = out {
        eprintln!("wrote {} {t} rows to {}", thousands(rows), p.display());
    }
    Ok(())
}

fn catalog(opts: GenOptions, shows: u64, dir: PathBuf) -> io::Result<()> {
    std::fs::create_dir_all(&dir)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display())))?;
    let mut writers: [Option<BufWriter<File>>; 4] = Default::default();
    for t in EntityType::ALL {
        let path = dir.join(format!("{t}s.csv"));
        let f = File::create(&path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
        })?;
        writers[t.index()] = Some(BufWriter::new(f));
    }
    let counts = Generator::new(opts, writers)?.catalog(shows)?;
    let summary: Vec<String> = EntityType::ALL
        .iter()
        .map(|t| format!("{} {t}s", thousands(counts[t.index()])))
        .collect();
    eprintln!("wrote {} to {}", summary.join(", "), dir.display());
    Ok(())
}
