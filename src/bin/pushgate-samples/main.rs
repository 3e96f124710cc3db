//! `pushgate-samples`: writes the committed sample DICOM set and large
//! synthetic benchmark data for pushgate. All output is synthetic and
//! deterministic (fixed dates, UIDs hashed from names, no OS randomness).

mod bench;
mod bsn;
mod ct;
mod ds;
mod modules;
mod mr;
mod phantom;
mod presentation;
mod report;
mod rle;
mod studies;
mod uid;
mod us;
mod xa;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "pushgate-samples", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// (Re)write the small committed sample set into DIR.
    Samples {
        /// Output directory, e.g. sample-dicom
        dir: PathBuf,
    },
    /// Write a benchmark CT series, one slice per file, into DIR.
    Bench {
        dir: PathBuf,
        /// Number of slices
        #[arg(long, default_value_t = 500)]
        count: u32,
        /// Rows and columns per slice
        #[arg(long, default_value_t = 512)]
        size: u16,
        /// Extra text mixed into every UID, to get a distinct study
        #[arg(long, default_value = "")]
        salt: String,
    },
    /// Write N small studies (one instance each) of many patients, dates
    /// and modalities into DIR: the console's study-list benchmark.
    Studies {
        dir: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        count: u32,
    },
    /// Write one large multi-frame 16-bit instance, streaming the frames.
    Large {
        file: PathBuf,
        /// Number of frames
        #[arg(long)]
        frames: u32,
        #[arg(long, default_value_t = 512)]
        rows: u16,
        #[arg(long, default_value_t = 512)]
        cols: u16,
    },
}

/// Create `dir/sub` and delete the `.dcm` files a previous run left there.
fn fresh_dir(dir: &Path, sub: &str) -> Result<PathBuf> {
    let path = dir.join(sub);
    fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    for entry in fs::read_dir(&path).with_context(|| format!("listing {}", path.display()))? {
        let file = entry?.path();
        if file.extension().is_some_and(|e| e == "dcm") {
            fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
        }
    }
    Ok(path)
}

fn samples(dir: &Path) -> Result<()> {
    type Writer = fn(&Path) -> Result<usize>;
    let sets: [(&str, Writer); 5] = [
        ("ct-phantom", ct::write_study),
        ("mr-brain", mr::write_study),
        ("jpeg", us::write_study),
        ("rle", ct::write_rle),
        ("multiframe", xa::write_study),
    ];
    for (sub, write) in sets {
        let path = fresh_dir(dir, sub)?;
        let n = write(&path).with_context(|| format!("writing {sub}"))?;
        eprintln!("{}: {n} files", path.display());
    }
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Samples { dir } => samples(&dir),
        Command::Bench {
            dir,
            count,
            size,
            salt,
        } => bench::bench(&dir, count, size, &salt),
        Command::Studies { dir, count } => studies::studies(&dir, count),
        Command::Large {
            file,
            frames,
            rows,
            cols,
        } => bench::large(&file, frames, rows, cols),
    }
}
