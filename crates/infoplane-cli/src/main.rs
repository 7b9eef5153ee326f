//! `infoplane`: the command line. Parses flags, reads and writes files through the store, and
//! hands numbers to the estimator. Every failure exits with code 2 and one line naming its cause.

mod correlate;
mod demo;
mod estimate;
mod hidden;
mod report;
mod train;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "infoplane", version, about = "Places language models on the information-bottleneck plane (Conklin et al., ICLR 2026).")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The estimator on an embedded synthetic corpus with known structure (no files needed).
    Demo(demo::DemoArgs),
    /// H(Z) and I(X; Z) with shuffled nulls for embeddings you already have (.npy).
    Estimate(estimate::EstimateArgs),
    /// Merge partial statistics written by `estimate --partial-output` into one result.
    MergePartials(estimate::MergeArgs),
    /// Every layer's hidden states of one text file through a model (.npy files).
    Hidden(hidden::HiddenArgs),
    /// Plots (SVG, PNG) and a self-contained report.html for a run or a sweep directory.
    Report(report::ReportArgs),
    /// Correlate a sweep's metrics with benchmark scores (Pearson, Spearman, partial Spearman).
    Correlate(correlate::CorrelateArgs),
    /// Train a small Llama model and its BPE tokenizer on a corpus, with log-spaced HF checkpoints and a manifest.
    Train(train::TrainArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Estimate(args) => estimate::run(args),
        Command::MergePartials(args) => estimate::merge(args),
        Command::Hidden(args) => hidden::run(args),
        Command::Report(args) => report::run(args),
        Command::Correlate(args) => correlate::run(args),
        Command::Train(args) => train::run(args, Default::default()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
