//! `infoplane demo`: the paper in miniature, offline, on a laptop CPU, in minutes.
//!
//! Three small Llama models learn from the bundled 1,000-document C4 sample (one shared byte-level
//! BPE tokenizer), each saving log-spaced checkpoints; every checkpoint, and Karpathy's real
//! stories260K model, is then analysed on held-out C4 documents with one W and one set of
//! settings; the report shows the trajectories on the information plane, loss against
//! optimality, the information per context level and the per-layer profiles. Everything it
//! needs is compiled into the binary: no download, no GPU.

use crate::analyze::AnalysisArgs;
use crate::sweep::{self, SweepArgs};
use crate::train::{set_threads, Bar};
use anyhow::{Context, Result};
use clap::{Args, Parser};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use infoplane_store::write_atomic;
use infoplane_train::{shape_for, train, train_tokenizer, TrainJob, TrainSettings};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

/// The demo's data, compiled in (C4: ODC-BY 1.0, AllenAI; stories260K: MIT, Karpathy; see data/).
const C4_SAMPLE: &[u8] = include_bytes!("../../../data/c4_sample/c4_en_train00000_first1000.jsonl");
const STORIES_MODEL: &[u8] = include_bytes!("../../../data/stories260K/stories260K.bin");
const STORIES_TOKENIZER: &[u8] = include_bytes!("../../../data/stories260K/tok512.bin");

#[derive(Args)]
pub struct DemoArgs {
    /// Where everything goes: checkpoints, runs, models.csv, plots and report.html.
    #[arg(long, default_value = "infoplane-demo")]
    pub output: PathBuf,
    /// Only the estimator on a synthetic corpus with known structure (seconds, no model).
    #[arg(long)]
    pub synthetic: bool,
    /// Positions of the synthetic corpus (with --synthetic).
    #[arg(long, default_value_t = 100_000)]
    pub positions: usize,
    /// Scale every model's training steps (e.g. 0.2 for a quick look, 3 for smoother curves).
    #[arg(long, default_value_t = 1.0)]
    pub steps_scale: f64,
    /// Held-out documents every checkpoint is analysed on.
    #[arg(long, default_value_t = 150)]
    pub heldout_docs: usize,
}

/// The sizes trained: (name, layers, width, heads, steps at scale 1).
const SIZES: [(&str, usize, usize, usize, u64); 3] = [("tiny-L2-d48", 2, 48, 4, 1200), ("small-L3-d96", 3, 96, 4, 700), ("base-L4-d128", 4, 128, 4, 450)];
const CONTEXT: usize = 64;
const VOCAB: usize = 512;

#[derive(Parser)]
struct AnalysisFlags {
    #[command(flatten)]
    analysis: AnalysisArgs,
}

pub fn run(args: DemoArgs, stop: Arc<AtomicBool>) -> Result<()> {
    if args.synthetic {
        return crate::demo_synthetic::synthetic(crate::demo_synthetic::SyntheticArgs { output: args.output, positions: args.positions });
    }
    let started = Instant::now();
    // One thread per model for training (candle's per-op threading does not pay at these sizes).
    set_threads(Some(1))?;
    let out = &args.output;
    let inputs = out.join("inputs");
    std::fs::create_dir_all(&inputs).with_context(|| format!("{}: cannot create the demo directory", inputs.display()))?;
    let c4 = inputs.join("c4_sample.jsonl");
    let stories = inputs.join("stories260K.bin");
    write_atomic(&c4, C4_SAMPLE)?;
    write_atomic(&stories, STORIES_MODEL)?;
    write_atomic(&inputs.join("tok512.bin"), STORIES_TOKENIZER)?;

    // Training and held-out documents: the last `heldout_docs` of the sample are never trained on.
    let corpus = infoplane_store::read_corpus(&c4, &Default::default())?;
    let n = corpus.documents.len();
    let (train_docs, heldout) = corpus.documents.split_at(n - args.heldout_docs.min(n / 2));
    let train_texts: Vec<&str> = train_docs.iter().map(|d| d.text.as_str()).collect();
    let eval_texts: Vec<&str> = heldout.iter().take(32).map(|d| d.text.as_str()).collect();
    let mut heldout_jsonl = String::new();
    for d in heldout {
        heldout_jsonl.push_str(&serde_json::json!({ "text": d.text }).to_string());
        heldout_jsonl.push('\n');
    }
    let heldout_path = inputs.join("heldout.jsonl");
    write_atomic(&heldout_path, heldout_jsonl.as_bytes())?;

    eprintln!("[1/3] training a {VOCAB}-token BPE tokenizer and {} models on {} C4 documents", SIZES.len(), train_docs.len());
    let tokenizer = train_tokenizer(&train_texts, VOCAB)?;
    let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} steps {per_sec} {msg} ETA {eta}").expect("a valid template").progress_chars("=> ");
    let runs_dir = out.join("training");
    let results: Vec<Result<PathBuf>> = std::thread::scope(|scope| {
        let handles: Vec<_> = SIZES
            .iter()
            .map(|&(name, layers, width, heads, steps)| {
                let steps = ((steps as f64 * args.steps_scale).round() as u64).max(8);
                let bar = bars.add(ProgressBar::new(steps).with_style(style.clone()).with_prefix(name));
                let (tokenizer, train_texts, eval_texts, stop, dir) = (&tokenizer, &train_texts, &eval_texts, stop.clone(), runs_dir.join(name));
                scope.spawn(move || -> Result<PathBuf> {
                    let shape = shape_for(tokenizer, layers, width, heads, None, None, CONTEXT, false)?;
                    let mut settings = TrainSettings::new(steps, 16, CONTEXT, 0);
                    settings.checkpoints = 7;
                    settings.eval_windows = 32;
                    let job = TrainJob { name: name.to_string(), shape, settings, output: dir.clone(), overwrite: true };
                    let summary = train(&job, tokenizer, train_texts, eval_texts, &mut Bar { bar, stop, log_checkpoints: false })?;
                    Ok(summary.manifest)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a training thread does not panic")).collect()
    });
    let manifests = results.into_iter().collect::<Result<Vec<_>>>()?;
    eprintln!("      trained in {:.0} s", started.elapsed().as_secs_f64());

    // One manifest: every checkpoint of every size, and the real stories260K model.
    let mut manifest = String::from("# Written by `infoplane demo`: every checkpoint it trained, and Karpathy's stories260K.\n");
    for m in &manifests {
        let text = std::fs::read_to_string(m).with_context(|| m.display().to_string())?;
        let dir = m.parent().expect("a manifest is in its run directory");
        let rel = dir.strip_prefix(out).unwrap_or(dir);
        // Checkpoint paths are relative to their manifest; make them relative to this one.
        for line in text.lines() {
            match line.strip_prefix("model = \"") {
                Some(rest) => manifest.push_str(&format!("model = \"{}/{rest}\n", rel.display())),
                None => manifest.push_str(&format!("{line}\n")),
            }
        }
    }
    manifest.push_str("\n[[model]]\nmodel = \"inputs/stories260K.bin\"\nname = \"stories260K\"\nfamily = \"stories260K (TinyStories, llama2.c)\"\nparams = 260000\n");
    let manifest_path = out.join("demo.toml");
    write_atomic(&manifest_path, manifest.as_bytes())?;

    eprintln!("[2/3] analysing every checkpoint on {} held-out documents ({CONTEXT} tokens each)", heldout.len());
    let flags = AnalysisFlags::try_parse_from([
        "analysis".to_string(),
        "--corpus".into(),
        heldout_path.display().to_string(),
        "--max-tokens".into(),
        CONTEXT.to_string(),
        "--max-docs".into(),
        heldout.len().to_string(),
        "--no-partials".into(),
        "--quiet".into(),
    ])?;
    let sweep_dir = out.join("sweep");
    sweep::run(SweepArgs { manifest: manifest_path, analysis: flags.analysis, output: sweep_dir.clone() }, stop)?;

    eprintln!("[3/3] writing the report");
    let report = infoplane_report::write_report(&sweep_dir, &infoplane_report::ReportOptions { color_by: Some("step".into()), scores: None })?;
    // Per-layer profiles of the largest model's last checkpoint, as a run report of its own.
    let last = last_checkpoint_run(&sweep_dir, SIZES[SIZES.len() - 1].0)?;
    let layer_report = infoplane_report::write_report(&last, &Default::default())?;
    eprintln!("done in {:.0} s", started.elapsed().as_secs_f64());
    println!("report: {}", report.html.display());
    println!("per-layer report of {}: {}", last.file_name().unwrap_or_default().to_string_lossy(), layer_report.html.display());
    println!("table of every model and checkpoint: {}", sweep_dir.join("models.csv").display());
    Ok(())
}

/// The run directory of the highest step of `family` in a sweep.
fn last_checkpoint_run(sweep_dir: &Path, family: &str) -> Result<PathBuf> {
    let table = infoplane_store::Table::read_csv(&sweep_dir.join("models.csv"))?;
    let (ids, families, steps) = (table.column("id"), table.column("family"), table.column("step"));
    let (Some(ids), Some(families), Some(steps)) = (ids, families, steps) else { anyhow::bail!("models.csv lacks id, family or step") };
    let best = (0..table.rows())
        .filter(|&r| families.text_at(r).as_deref() == Some(family))
        .max_by(|&a, &b| steps.f64_at(a).unwrap_or(0.0).total_cmp(&steps.f64_at(b).unwrap_or(0.0)))
        .and_then(|r| ids.text_at(r))
        .ok_or_else(|| anyhow::anyhow!("no checkpoint of {family} in models.csv"))?;
    Ok(sweep_dir.join("runs").join(best))
}
