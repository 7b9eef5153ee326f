//! `infoplane report DIR`: plots (SVG, PNG) and one self-contained report.html for a run or a sweep.

use anyhow::Result;
use clap::Args;
use infoplane_report::{write_report, Kind, ReportOptions};
use std::path::PathBuf;

#[derive(Args)]
pub struct ReportArgs {
    /// A run directory (summary.json, layers.csv) or a sweep directory (models.csv).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Colour the sweep's information plane by this column: one of models.csv, or a benchmark
    /// column of --scores (e.g. benchmark_mean, mmlu_pro).
    #[arg(long, value_name = "COL")]
    color_by: Option<String>,
    /// Benchmark scores (any CSV with a `model` column, or the Open LLM Leaderboard v2 table),
    /// joined to models.csv by its `model` column, for --color-by.
    #[arg(long, value_name = "SCORES.csv", requires = "color_by")]
    scores: Option<PathBuf>,
}

pub fn run(args: ReportArgs) -> Result<()> {
    let out = write_report(&args.dir, &ReportOptions { color_by: args.color_by, scores: args.scores })?;
    let kind = match out.kind {
        Kind::Run => "run",
        Kind::Sweep => "sweep",
    };
    for note in &out.notes {
        println!("note: {note}");
    }
    println!("{kind} report: {} plots (SVG + PNG) in {}", out.files.len() / 2, args.dir.join("plots").display());
    println!("wrote {}", out.html.display());
    Ok(())
}
