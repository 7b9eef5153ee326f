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

/// The error and its causes joined by ": ", each said once: typed errors often print their
/// source themselves ("x.npy: No such file or directory"), and the chain would repeat it.
fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if text.contains(c.as_str()) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&c);
    }
    one_line(&text)
}

/// What a failed command may leave of an output directory it created.
enum Leftover {
    /// Nothing at all (a plan is usable only once plan.json is written, last).
    Nothing,
    /// Nothing, unless the run checkpointed and can be resumed (interrupted, or an I/O error
    /// such as a full disk after some work): then the checkpoint stays for `--resume`.
    Checkpoint,
    /// Finished work (a sweep's completed units); only empty directories go.
    FinishedWork,
}

/// The output directory of `command` when it does not exist yet, and what may stay of it if the
/// command fails.
fn fresh_output(command: &Command) -> Option<(std::path::PathBuf, Leftover)> {
    let (dir, leftover) = match command {
        Command::Analyze(a) => (a.output.clone(), Leftover::Checkpoint),
        Command::Plan(a) => (a.output.clone(), Leftover::Nothing),
        Command::Sweep(a) => (a.output.clone(), Leftover::FinishedWork),
        Command::Merge(a) => (a.output.clone(), Leftover::FinishedWork),
        Command::Demo(a) => (a.output.clone(), Leftover::FinishedWork),
        _ => return None,
    };
    (!dir.exists()).then_some((dir, leftover))
}

/// Whether a failed run left state that `--resume` can continue from.
fn resumable(e: &anyhow::Error, dir: &std::path::Path) -> bool {
    use infoplane_analysis::AnalysisError;
    let interrupted = matches!(e.downcast_ref::<AnalysisError>(), Some(AnalysisError::Interrupted { .. }));
    let io = e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some() || matches!(c.downcast_ref::<AnalysisError>(), Some(AnalysisError::Io(_))));
    fn has_checkpoint(dir: &std::path::Path) -> bool {
        std::fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
            let p = e.path();
            if p.is_dir() {
                has_checkpoint(&p)
            } else {
                p.file_name().is_some_and(|n| n == "progress.json") || p.extension().is_some_and(|x| x == "safetensors")
            }
        })
    }
    interrupted || (io && has_checkpoint(dir))
}

/// Removes the empty directories under `dir` (bottom-up) and `dir` itself when empty.
fn remove_empty_dirs(dir: &std::path::Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_dirs(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
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
    let fresh = fresh_output(&cli.command);
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
            // A failed command leaves no output behind: what it created goes, except a
            // checkpoint to resume from or finished work.
            if let Some((dir, leftover)) = fresh {
                match leftover {
                    Leftover::Nothing => drop(std::fs::remove_dir_all(&dir)),
                    Leftover::Checkpoint if !resumable(&e, &dir) => drop(std::fs::remove_dir_all(&dir)),
                    _ => remove_empty_dirs(&dir),
                }
            }
            eprintln!("error: {}", message(&e));
            match e.downcast_ref::<infoplane_analysis::AnalysisError>() {
                Some(infoplane_analysis::AnalysisError::Interrupted { .. }) => ExitCode::from(130),
                _ => ExitCode::from(2),
            }
        }
    }
}
