//! `infoplane`: the command line. Parses flags, reads and writes files through the store, and
//! hands numbers to the estimator. Every failure exits with code 2 and one line naming its cause.

mod analyze;
mod correlate;
mod demo;
mod demo_synthetic;
mod estimate;
mod hidden;
mod plan;
mod progress;
mod report;
mod sweep;
mod train;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Errors are reported on one line, whatever the messages they wrap.
fn one_line(message: &str) -> String {
    message.split('\n').map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

#[derive(Parser)]
#[command(name = "infoplane", version, about = "Places language models on the information-bottleneck plane (Conklin et al., ICLR 2026).")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The paper in miniature, offline: small models trained, every checkpoint analysed, a report.
    Demo(demo::DemoArgs),
    /// H(Z) and I(X; Z) with shuffled nulls for embeddings you already have (.npy).
    Estimate(estimate::EstimateArgs),
    /// Merge partial statistics written by `estimate --partial-output` into one result.
    MergePartials(estimate::MergeArgs),
    /// Every layer's hidden states of one text file through a model (.npy files).
    Hidden(hidden::HiddenArgs),
    /// One model on one corpus: per-layer complexity, expressivity, nulls, back-off, proportions,
    /// optimality, next-token loss and preference information, with provenance.
    Analyze(analyze::AnalyzeArgs),
    /// Every model and checkpoint of a manifest, analysed with one set of settings, in one table.
    Sweep(sweep::SweepArgs),
    /// Cut an analysis or a sweep into units (model × corpus shard) for a scheduler.
    Plan(plan::PlanArgs),
    /// Run one unit of a plan (index from --unit/--index, or SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX, HQ_TASK_ID).
    Run(plan::RunArgs),
    /// Which units of a plan are done, failed, started or missing.
    Status(plan::StatusArgs),
    /// Merge a plan's finished units into the outputs of `analyze` or `sweep`.
    Merge(plan::MergeArgs),
    /// Plots (SVG, PNG) and a self-contained report.html for a run or a sweep directory.
    Report(report::ReportArgs),
    /// Correlate a sweep's metrics with benchmark scores (Pearson, Spearman, partial Spearman).
    Correlate(correlate::CorrelateArgs),
    /// Train a small Llama model and its BPE tokenizer on a corpus, with log-spaced HF checkpoints and a manifest.
    Train(train::TrainArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Ctrl-C asks long runs to stop at their next checkpoint (a second Ctrl-C kills at once).
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\ninterrupt: stopping at the next checkpoint (Ctrl-C again to kill)");
        });
    }
    let result = match cli.command {
        Command::Analyze(args) => analyze::run(args, stop),
        Command::Sweep(args) => sweep::run(args, stop),
        Command::Plan(args) => plan::plan(args),
        Command::Run(args) => plan::run(args, stop),
        Command::Status(args) => plan::status(args),
        Command::Merge(args) => plan::merge(args),
        Command::Demo(args) => demo::run(args, stop.clone()),
        Command::Estimate(args) => estimate::run(args),
        Command::MergePartials(args) => estimate::merge(args),
        Command::Hidden(args) => hidden::run(args),
        Command::Report(args) => report::run(args),
        Command::Correlate(args) => correlate::run(args),
        Command::Train(args) => train::run(args, stop),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&format!("{e:#}")));
            match e.downcast_ref::<infoplane_analysis::AnalysisError>() {
                Some(infoplane_analysis::AnalysisError::Interrupted { .. }) => ExitCode::from(130),
                _ => ExitCode::from(2),
            }
        }
    }
}
